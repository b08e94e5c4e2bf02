-- What the print file needs, kept with the card so it is printed after the commit
-- (services/production/spooler.py), and the print state of each card.
ALTER TABLE cards
    ADD COLUMN holder_name          text,
    ADD COLUMN birth_date           date,
    ADD COLUMN employer_name        text,
    ADD COLUMN employer_org_number  text,
    ADD COLUMN photo_key            text,
    ADD COLUMN printed_at           timestamptz,
    ADD COLUMN print_file           text,
    ADD COLUMN print_sha256         text,
    ADD COLUMN print_attempts       integer NOT NULL DEFAULT 0,
    ADD COLUMN print_after          timestamptz NOT NULL DEFAULT now();

-- Cards made before print files existed are not printed now: they have nothing to print.
UPDATE cards SET printed_at = created_at;

CREATE INDEX cards_to_print ON cards (print_after) WHERE printed_at IS NULL;
