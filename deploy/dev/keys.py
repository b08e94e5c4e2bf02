"""The keys a profile makes once and keeps in its state: support's command signing key, notify's
proof-signing key and the development Maskinporten client key."""

from __future__ import annotations

from pathlib import Path

from deploy.dev.profiles import Profile


def command_keys_up(p: Profile) -> str:
    """support's command signing key pair, made once per profile; returns its key id."""
    from shared.signing import ensure_keypair

    return ensure_keypair(p.command_key, p.command_key.with_suffix(".pub.pem"))


def proof_key_up(p: Profile) -> None:
    """Make the proof-signing key before any notify instance starts: instances starting at
    once on fresh state race to create it (one may read the file half written)."""
    from services.notify.proof import load_or_create_private_key

    load_or_create_private_key(Path(p.env()["KORTFLYT_PROOF_KEY_FILE"]))


def maskinporten_dev_key(p: Profile) -> Path:
    """A development Maskinporten client key (RSA, PEM), made once; returns the public key's
    file, which the fake Maskinporten checks client assertions with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = p.maskinporten_key.with_suffix(".pub.pem")
    if not p.maskinporten_key.exists() or not public.exists():
        p.maskinporten_key.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        p.maskinporten_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        p.maskinporten_key.chmod(0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return public
