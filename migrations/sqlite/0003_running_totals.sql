-- Running totals of share weight, so that the PPLNS window is found with a
-- few index lookups instead of a walk back through every share in it (on
-- mainnet a window of twice the network difficulty holds around a billion
-- ASIC shares).
--
-- A weight is a share's difficulty in units of 2^-32 (`round(difficulty ×
-- 2^32)`, the payout's `ShareWeight`); totals outgrow 64 bits, so each is
-- kept as two BIGINTs: value = hi × 2^62 + lo, with 0 ≤ lo < 2^62.
--
-- Totals are kept per batch of shares committed together (the group
-- commit), not per share: a batch adds one row here and one per worker in
-- it, and the shares table keeps its single index on time. Shares recorded
-- before this migration are put into batches by the pool when it opens the
-- ledger, before it records anything.

-- The pool's total weight of every share ever accepted: one row.
CREATE TABLE pool_totals (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    total_hi  BIGINT NOT NULL,
    total_lo  BIGINT NOT NULL
);
INSERT INTO pool_totals (id, total_hi, total_lo) VALUES (1, 0, 0);

-- One row per batch: its shares (ids first_share..last_share, in the order
-- they were accepted), their first and last times, and the pool's total
-- after it.
CREATE TABLE share_batches (
    id           INTEGER PRIMARY KEY,
    first_share  BIGINT NOT NULL,
    last_share   BIGINT NOT NULL,
    first_time   BIGINT NOT NULL,
    last_time    BIGINT NOT NULL,
    total_hi     BIGINT NOT NULL,
    total_lo     BIGINT NOT NULL
);
CREATE INDEX share_batches_total ON share_batches (total_hi, total_lo);
CREATE INDEX share_batches_last_time ON share_batches (last_time);

-- Each worker's total after each batch it has shares in (clustered on its
-- key: one b-tree write per row).
CREATE TABLE batch_workers (
    worker_id  BIGINT NOT NULL,
    batch_id   BIGINT NOT NULL,
    total_hi   BIGINT NOT NULL,
    total_lo   BIGINT NOT NULL,
    PRIMARY KEY (worker_id, batch_id)
) WITHOUT ROWID;

-- Each worker's total now, and its newest batch.
ALTER TABLE workers ADD COLUMN total_hi BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN total_lo BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN last_batch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX workers_last_batch ON workers (last_batch);
