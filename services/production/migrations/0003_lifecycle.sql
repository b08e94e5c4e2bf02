-- Cards after production (design.md): a card is ACTIVE, SUSPENDED, REVOKED or EXPIRED
-- (services/production/cards.py). BLOCKED was never set by anything: kept as SUSPENDED.
ALTER TABLE cards DROP CONSTRAINT cards_status_check;
UPDATE cards SET status = 'SUSPENDED' WHERE status = 'BLOCKED';
ALTER TABLE cards ADD CONSTRAINT cards_status_check
    CHECK (status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED'));

-- An order may have more cards than one: a lost card's replacement (report_lost) is a new
-- card of the same order. The order's current card is the one no other card replaces;
-- a card is replaced at most once (UNIQUE), so a lost card has at most one replacement.
ALTER TABLE cards DROP CONSTRAINT cards_order_id_key;
CREATE INDEX cards_order ON cards (order_id);

ALTER TABLE cards
    -- why the card has its status (card.status's reasons), empty while ACTIVE
    ADD COLUMN reasons            jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- what holds it SUSPENDED: the register findings in force, and support
    ADD COLUMN register_reasons   jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN support_suspended  boolean NOT NULL DEFAULT false,
    ADD COLUMN replaces           text UNIQUE REFERENCES cards (card_number),
    ADD COLUMN status_changed_at  timestamptz;

-- The expiry pass looks for cards not yet final whose last day has passed.
CREATE INDEX cards_to_expire ON cards (valid_until) WHERE status IN ('ACTIVE', 'SUSPENDED');
