-- Cards after production (design.md): the employer is e-mailed when a card is suspended,
-- reinstated or revoked, 30 days before it expires, and when a lost card's replacement
-- is produced. These e-mails are notifications too (sent by the same sender), told apart
-- from the order's status e-mails by `notice` ('' for an order status): one per card and
-- status change ('card:<number>:<status>:<when>'), one expiry warning per card
-- ('card:<number>:EXPIRES_SOON'), one per replacement card ('card:<number>:PRODUCED').
ALTER TABLE notifications ADD COLUMN notice text NOT NULL DEFAULT '';
ALTER TABLE notifications DROP CONSTRAINT notifications_pkey;
ALTER TABLE notifications ADD PRIMARY KEY (order_id, revision, status, notice);

-- Every card of an order (a lost card's replacement is a second card), with the revision
-- it was made from (whose contact is written to) and its latest status (card.status).
ALTER TABLE cards DROP CONSTRAINT cards_pkey;
ALTER TABLE cards
    ADD PRIMARY KEY (card_number),
    ADD COLUMN revision     integer,
    ADD COLUMN status       text NOT NULL DEFAULT 'ACTIVE'
        CHECK (status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED')),
    ADD COLUMN recorded_at  timestamptz NOT NULL DEFAULT now();
CREATE INDEX cards_order ON cards (order_id, recorded_at);
-- Cards remembered before: the revision of the order's newest contact.
UPDATE cards SET revision = (SELECT max(revision) FROM contacts WHERE contacts.order_id = cards.order_id);
-- The daily look for cards that expire within 30 days.
CREATE INDEX cards_expiring ON cards (valid_until) WHERE status IN ('ACTIVE', 'SUSPENDED');
