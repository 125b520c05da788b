-- What each block did to the balances owed, so that an orphaned block can
-- give it back (and a block back in the active chain take it again).

-- One row per block and address whose balance the block changed.
-- `delta` is the block's own change: what its payout left owed less what
-- that payout started from. `applied` is what the block's last move of that
-- balance actually moved: `delta` unless a balance stopped at zero (the
-- credits were already paid by another block), so that reverting and
-- re-applying a block are exact inverses of each other.
CREATE TABLE balance_changes (
    block_hash  TEXT   NOT NULL REFERENCES blocks (hash),
    address     TEXT   NOT NULL,
    delta       BIGINT NOT NULL CHECK (delta <> 0),
    applied     BIGINT NOT NULL,
    PRIMARY KEY (block_hash, address)
);

-- Whether the block's balance changes are in the balances now: true while
-- it is pending or confirmed, false while it is orphaned. Flipped in the
-- same transaction as the balances move, and only when it differs from the
-- wanted state, so that a repeated or interrupted look moves nothing twice.
ALTER TABLE blocks ADD COLUMN balances_in_effect BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE blocks SET balances_in_effect = FALSE WHERE status = 'orphaned';
