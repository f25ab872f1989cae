-- The order-shipping workflow. Started by a webhook with the order as input:
--   {"order_id": "ord_1001", "customer": "ada@example.com"}
-- df variables, captured when an instance starts (set them as the role that owns the workflow):
--   carrier_url   the carrier API, e.g. http://127.0.0.1:8090
--   api_url       where the carrier can reach the pgflare API, e.g. http://127.0.0.1:8787
-- Steps: record the order (exactly once) → ask the carrier for a shipment (retried, one Idempotency-Key)
-- while already waiting up to 2 days for its "shipped" callback (a signal) → record the outcome: shipped
-- with the shipment and tracking number, or shipment_timed_out.
-- The wait runs beside the request (&), not after it: a signal that arrives before a wait has started is
-- dropped (pg_durable's rule), and a fast carrier may call back before a following step would have begun.
SELECT df.define_workflow('ship-order',
       'INSERT INTO shipping.orders (order_ref, customer, status) VALUES ($input.order_id, $input.customer, ''received'')
        ON CONFLICT (order_ref) DO NOTHING'
    ~> ('SELECT jsonb_build_object(''order'', $input.order_id::text,
                                   ''callback_url'', ''{api_url}/v1/instances/{sys_instance_id}/signals/shipped'') AS body' |=> 'request')
    ~> (  (df.retry(df.http('{carrier_url}/shipments', 'POST', '$request.body', '{"Content-Type": "application/json"}', 30), 5, 2, 60)
           & df.wait_for_signal('shipped', 172800)) |=> 'carrier')
    ~> 'UPDATE shipping.orders
           SET status = CASE WHEN ($carrier::jsonb -> 1 ->> ''timed_out'')::boolean THEN ''shipment_timed_out'' ELSE ''shipped'' END,
               shipment = ($carrier::jsonb -> 0 ->> ''body'')::jsonb ->> ''shipment'',
               tracking = $carrier::jsonb -> 1 -> ''data'' ->> ''tracking'',
               updated_at = now()
         WHERE order_ref = $input.order_id
     RETURNING status, shipment, tracking',
    'Ship an order: carrier request, callback signal with a time-out, outcome recorded');
