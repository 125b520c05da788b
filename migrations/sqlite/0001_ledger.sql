-- The pool's ledger: workers, shares, blocks, payouts and balances owed.

CREATE TABLE workers (
    id          INTEGER PRIMARY KEY,
    address     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    UNIQUE (address, name)
);

-- One row per accepted share, credited at the difficulty of its job.
CREATE TABLE shares (
    id          INTEGER PRIMARY KEY,
    time        BIGINT           NOT NULL,
    address     TEXT             NOT NULL,
    worker      TEXT             NOT NULL,
    difficulty  DOUBLE PRECISION NOT NULL,
    height      BIGINT           NOT NULL,
    job_id      TEXT             NOT NULL,
    block_hash  TEXT
);
CREATE INDEX shares_time ON shares (time);
CREATE INDEX shares_address_time ON shares (address, time);

CREATE TABLE blocks (
    hash                TEXT PRIMARY KEY,
    height              BIGINT           NOT NULL,
    reward              BIGINT           NOT NULL,
    fees                BIGINT           NOT NULL,
    status              TEXT             NOT NULL CHECK (status IN ('pending', 'confirmed', 'orphaned')),
    confirmations       BIGINT           NOT NULL DEFAULT 0,
    found_at            BIGINT           NOT NULL,
    finder_address      TEXT             NOT NULL,
    finder_worker       TEXT             NOT NULL,
    network_difficulty  DOUBLE PRECISION NOT NULL,
    effort              DOUBLE PRECISION NOT NULL
);
CREATE INDEX blocks_status_height ON blocks (status, height);
CREATE INDEX blocks_found_at ON blocks (found_at);

-- The coinbase outputs of each block found.
CREATE TABLE payouts (
    block_hash  TEXT   NOT NULL REFERENCES blocks (hash),
    address     TEXT   NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (block_hash, address)
);

-- What the operator's output holds for miners: credits too small for an
-- output, or beyond the output cap, paid in a later coinbase.
CREATE TABLE balances (
    address     TEXT   PRIMARY KEY,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    updated_at  BIGINT NOT NULL
);
