-- What intake needs to replay an order it could not accept (support's `replay` command):
-- the last submitted event of the order, as intake read it.
ALTER TABLE orders ADD COLUMN submitted jsonb;

-- Audit trail of support commands intake acted on (who, when, why, what it did).
CREATE TABLE command_audit (
    command_id  uuid PRIMARY KEY,
    command     text NOT NULL,
    order_id    text NOT NULL,
    actor       text NOT NULL,
    reason      text,
    issued_at   timestamptz NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL
);
