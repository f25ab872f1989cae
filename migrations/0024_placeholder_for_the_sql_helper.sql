-- Placeholder on the docs branch only: the sql helper's 0024 takes this number. Delete this file when
-- merging (migrations must be numbered without gaps, so 0025 needs a 0024 here).
SELECT 1;
