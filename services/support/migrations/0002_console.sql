-- The support console (services.support.web): what support shows is what the owning
-- services publish, projected here; plus support's own accounts, sessions and audit.

-- From hmskort.order.submitted.v1, minimised: never the name or national id.
CREATE TABLE order_details (
    order_id             text PRIMARY KEY,
    revision             integer NOT NULL,
    card_type            text,
    employer_org_number  text,
    employer_name        text,
    birth_date           date,
    submitted_at         timestamptz NOT NULL
);
CREATE INDEX order_details_org ON order_details (employer_org_number);

-- The latest checks registry_check published on order.status (optional `checks` field).
CREATE TABLE order_checks (
    order_id    text PRIMARY KEY,
    revision    integer NOT NULL,
    checks      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- From hmskort.card.produced.v1.
CREATE TABLE cards (
    order_id     text PRIMARY KEY,
    card_number  text NOT NULL,
    issued_on    date NOT NULL,
    valid_until  date NOT NULL
);

-- From hmskort.order.command_outcomes.v1: what each owning service did with a command.
CREATE TABLE command_outcomes (
    command_id  uuid NOT NULL,
    service     text NOT NULL,
    order_id    text NOT NULL,
    command     text NOT NULL,
    actor       text NOT NULL,
    reason      text,
    issued_at   timestamptz NOT NULL,
    outcome     text NOT NULL,
    handled_at  timestamptz NOT NULL,
    PRIMARY KEY (command_id, service)
);
CREATE INDEX command_outcomes_order ON command_outcomes (order_id, issued_at);

-- Local accounts (argon2id hashes) and their sessions (only the token's SHA-256 is kept).
CREATE TABLE users (
    name           text PRIMARY KEY,
    role           text NOT NULL CHECK (role IN ('viewer', 'operator', 'supervisor')),
    password_hash  text NOT NULL,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_sha256  bytea PRIMARY KEY,
    user_name     text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- Every console action: sign-in (and failures), sign-out, each command sent.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    order_id    text,
    command_id  uuid,
    reason      text,
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
