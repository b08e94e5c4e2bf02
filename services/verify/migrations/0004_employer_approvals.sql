-- Whether an employer is approved in Renholdsregisteret (cleaning) and in
-- Bemanningsforetaksregisteret (staffing), as kortflyt's own checks last found it (the
-- register checks registry_check publishes with an order's status; a card suspended because
-- the approval was lost), with when: the employer check page shows it. No personal data.
ALTER TABLE orders ADD COLUMN employer_org_number text, ADD COLUMN card_type text;
CREATE TABLE employer_approvals (
    org_number  text NOT NULL,
    register    text NOT NULL CHECK (register IN ('cleaning', 'staffing')),
    approved    boolean NOT NULL,
    checked_at  timestamptz NOT NULL,
    PRIMARY KEY (org_number, register)
);
