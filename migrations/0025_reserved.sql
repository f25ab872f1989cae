-- 0025: reserved for another helper's migration on a parallel branch (this file only keeps the numbering
-- gap-free on the parity branch; drop it when that migration is merged).
SELECT 1;
