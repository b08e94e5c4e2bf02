-- Cards after production (design.md "Cards after production"): the active cards that
-- registry_check re-checks, from card.produced until card.status says REVOKED or EXPIRED.
CREATE TABLE active_cards (
    card_number     text PRIMARY KEY,
    order_id        text NOT NULL,
    employer_org    text NOT NULL,           -- the card's employer: the legal employer's main unit
    card_type       text NOT NULL,
    orgs            text[] NOT NULL,         -- every unit the employment may be reported on
    staffing        boolean NOT NULL,        -- the employer must stay approved as a staffing company
    details         jsonb NOT NULL,          -- the order (OrderDetails): who to ask Aa-registeret about
    due_at          timestamptz NOT NULL,    -- the scheduled re-check's next turn (spread over the period)
    checked_at      timestamptz,             -- the last scheduled re-check that got answers
    -- What registry_check last found, per requirement (a CARD_* reason code, or NULL when met):
    employer_code   text,                    -- from Enhetsregisteret's update feed
    employment_code text,                    -- from Aa-registeret (scheduled)
    approval_codes  text[] NOT NULL DEFAULT '{}',  -- Renholds-/Bemanningsforetaksregisteret (scheduled)
    missing_since   timestamptz,             -- the first answer without the employment (grace)
    reported        text NOT NULL DEFAULT 'reinstate:',  -- the last finding emitted (finding:CODE,...)
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX active_cards_due ON active_cards (due_at);
CREATE INDEX active_cards_employer ON active_cards (employer_org);
CREATE INDEX active_cards_orgs ON active_cards USING gin (orgs);

-- Where registry_check is in Enhetsregisteret's update feeds (enheter, underenheter):
-- the next oppdateringsid to read, or the time it started following (dato) before it had one.
CREATE TABLE feed_positions (
    feed        text PRIMARY KEY,
    next_id     bigint,
    since       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
