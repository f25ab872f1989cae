-- PLACEHOLDER on branch sec only, so 0014 can be numbered without a gap. At merge, take the real file.
SELECT 1;
