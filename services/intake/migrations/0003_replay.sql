-- What intake needs to replay an order it could not accept (support's `replay` command):
-- the last submitted event of the order, as intake read it.
ALTER TABLE orders ADD COLUMN submitted jsonb;

-- Commands are audited in command_audit (shared/migrations/0002_command_audit.sql).
