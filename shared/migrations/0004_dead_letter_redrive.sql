-- Re-driving dead letters (shared/redrive.py): what the record carried besides its value
-- (its key and headers, so it goes back as it came), and when which command re-drove it
-- (once per dead letter). Rows from before keep NULL key and headers.
ALTER TABLE dead_letters ADD COLUMN kafka_key bytea;
ALTER TABLE dead_letters ADD COLUMN headers jsonb;
ALTER TABLE dead_letters ADD COLUMN redriven_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN redrive_command uuid;
