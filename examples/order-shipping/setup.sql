-- Order shipping example: orders arrive by webhook, a carrier is asked to ship them and calls back.
CREATE SCHEMA IF NOT EXISTS shipping;
CREATE TABLE IF NOT EXISTS shipping.orders (
    order_ref  text PRIMARY KEY,
    customer   text NOT NULL,
    status     text NOT NULL,
    shipment   text,
    tracking   text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
