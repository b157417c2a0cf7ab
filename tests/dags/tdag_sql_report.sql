-- The report of tdag_sql.yaml, read beside it when the DAG is loaded
SELECT id, label, tag
FROM items
WHERE tag = :tag
ORDER BY id
