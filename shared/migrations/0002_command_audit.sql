-- Audit trail of the support commands a service acted on (design.md: who, when, why),
-- written by shared.messaging.audit_command; the command id makes a command idempotent.
-- IF NOT EXISTS: services that had the table in a migration of their own keep it.
CREATE TABLE IF NOT EXISTS command_audit (
    command_id  uuid PRIMARY KEY,
    command     text NOT NULL,
    order_id    text NOT NULL,
    actor       text NOT NULL,
    reason      text,
    issued_at   timestamptz NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL
);
CREATE INDEX IF NOT EXISTS command_audit_order ON command_audit (order_id, handled_at);
