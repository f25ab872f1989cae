-- PLACEHOLDER on branch roles only, so 0015 can be numbered without a gap. At merge, take the real file.
SELECT 1;
