-- Each card's latest status from hmskort.card.status.v1 (production): SUSPENDED, REVOKED,
-- EXPIRED and back to ACTIVE, with when and, in general terms, why. Kept apart from the
-- card as produced (`cards`), since a status may arrive before its card (two topics);
-- the look-ups read a card's status from here when there is one, else ACTIVE as produced.
CREATE TABLE card_statuses (
    card_number       text PRIMARY KEY,
    order_id          text NOT NULL,
    status            text NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED')),
    status_since      timestamptz NOT NULL,
    status_reason_nb  text,
    status_reason_en  text
);
