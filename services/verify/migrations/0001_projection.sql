-- verify's projection: what an inspector may be told about a card or an order on order.
-- Filled from hmskort.card.produced.v1, hmskort.order.status.v1 and hmskort.order.accepted.v1;
-- never a national id or a birth date.
CREATE TABLE cards (
    card_number          text PRIMARY KEY,
    order_id             text NOT NULL,
    card_type            text NOT NULL,
    -- ACTIVE until card.status (issue 13, part 2) says otherwise; EXPIRED is also derived
    -- from valid_until at every look-up.
    status               text NOT NULL DEFAULT 'ACTIVE'
                         CHECK (status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED')),
    status_since         timestamptz NOT NULL,
    status_reason_nb     text,  -- why, in general terms, when suspended or revoked
    status_reason_en     text,
    holder_name          text,
    employer_org_number  text,
    employer_name        text,
    photo_key            text,
    issued_on            date NOT NULL,
    valid_until          date NOT NULL
);
CREATE INDEX cards_employer ON cards (employer_org_number, status, valid_until);

CREATE TABLE orders (
    order_id       text PRIMARY KEY,
    revision       integer NOT NULL,
    status         text NOT NULL,
    card_number    text,
    first_seen     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- from order.accepted (the newest accepted revision): the photo once it is accepted
    employer_name  text,
    photo_key      text
);
