-- registry_check's statuses of an order, as services/registry_check/orders.py names them
-- (STATUSES). A status outside them is a bug, stopped here.
ALTER TABLE checked_orders ADD CONSTRAINT checked_orders_status_known CHECK (
    status IN ('CHECKING', 'AWAITING_REGISTER', 'APPROVED', 'REJECTED', 'NEEDS_ATTENTION', 'CANCELLED')
);
