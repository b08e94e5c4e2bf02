-- OpenID Connect sign-in (services/support/web/oidc.py). A staff member who signs in with
-- the issuer gets a row in `users` without a password (so no local sign-in), bound to the
-- issuer's subject; the role is the one the id token maps to at each sign-in.
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
-- "<issuer> <sub>"; a subject whose user name changed at the issuer gets a second row.
ALTER TABLE users ADD COLUMN oidc_subject text;

-- A sign-in on its way to the issuer and back: the state (only its SHA-256; the browser
-- holds the state itself in a cookie), the nonce the id token must carry, the PKCE
-- verifier and where to go afterwards. Used once: taken out at the callback.
CREATE TABLE oidc_logins (
    state_sha256   bytea PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    next_path      text NOT NULL,
    expires_at     timestamptz NOT NULL
);
