//! Reading scripts as Core does: opcode by opcode over raw bytes.
//!
//! Scripts stay byte slices so that malformed scripts (a push running past
//! the end) behave exactly as in Core: reading stops with an error at that
//! point, and what came before still counts.

use crate::opcodes::{
    decode_op_n, OP_0, OP_1, OP_16, OP_1NEGATE, OP_CODESEPARATOR, OP_EQUAL, OP_HASH160, OP_PUSHDATA1, OP_PUSHDATA2,
    OP_PUSHDATA4,
};

/// One step of a script: an opcode and, for pushes, the pushed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op<'a> {
    /// The opcode byte.
    pub opcode: u8,
    /// The bytes pushed (empty for non-push opcodes).
    pub data: &'a [u8],
}

/// A push runs past the end of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("push at offset {offset} runs past the end of the script")]
pub struct TruncatedPush {
    /// Where the opcode of the broken push starts.
    pub offset: usize,
}

/// Iterates over the operations of a script (Core's `GetScriptOp`). After a
/// [`TruncatedPush`] the iterator ends.
#[derive(Debug, Clone)]
pub struct Instructions<'a> {
    script: &'a [u8],
    pos: usize,
}

impl<'a> Instructions<'a> {
    /// Starts at the beginning of `script`.
    pub fn new(script: &'a [u8]) -> Self {
        Self { script, pos: 0 }
    }

    /// The offset of the next operation.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.script[self.pos..]
    }

    fn read_op(&mut self) -> Result<Op<'a>, TruncatedPush> {
        let start = self.pos;
        let rest = &self.script[start..];
        let fail = TruncatedPush { offset: start };
        let (&opcode, after) = rest.split_first().ok_or(fail)?;
        if opcode > OP_PUSHDATA4 {
            self.pos += 1;
            return Ok(Op { opcode, data: &[] });
        }
        let (len, header) = match opcode {
            OP_PUSHDATA1 => (usize::from(*after.first().ok_or(fail)?), 1),
            OP_PUSHDATA2 => {
                let b = after.get(..2).ok_or(fail)?;
                (usize::from(u16::from_le_bytes([b[0], b[1]])), 2)
            }
            OP_PUSHDATA4 => {
                let b = after.get(..4).ok_or(fail)?;
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                (usize::try_from(len).map_err(|_| fail)?, 4)
            }
            _ => (usize::from(opcode), 0),
        };
        let body = &after[header..];
        let data = body.get(..len).ok_or(fail)?;
        self.pos += 1 + header + len;
        Ok(Op { opcode, data })
    }
}

impl<'a> Iterator for Instructions<'a> {
    type Item = Result<Op<'a>, TruncatedPush>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.script.len() {
            return None;
        }
        let result = self.read_op();
        if result.is_err() {
            self.pos = self.script.len();
        }
        Some(result)
    }
}

/// Whether the script only pushes data (opcodes up to `OP_16`, `OP_RESERVED`
/// included, as in Core's `IsPushOnly`) and parses to the end.
pub fn is_push_only(script: &[u8]) -> bool {
    Instructions::new(script).all(|op| matches!(op, Ok(op) if op.opcode <= OP_16))
}

/// Whether the script is `OP_HASH160 <20 bytes> OP_EQUAL` (BIP16).
pub fn is_p2sh(script: &[u8]) -> bool {
    script.len() == 23 && script[0] == OP_HASH160 && script[1] == 0x14 && script[22] == OP_EQUAL
}

/// The version and program of a witness program script (BIP141): a version
/// opcode (`OP_0`, `OP_1`..`OP_16`) then one direct push of 2 to 40 bytes.
pub fn witness_program(script: &[u8]) -> Option<(u8, &[u8])> {
    if script.len() < 4 || script.len() > 42 {
        return None;
    }
    let version = decode_op_n(script[0])?;
    if usize::from(script[1]) + 2 != script.len() {
        return None;
    }
    Some((version, &script[2..]))
}

/// Whether the push of `data` by `opcode` is the shortest possible one
/// (Core's `CheckMinimalPush`).
pub fn is_minimal_push(data: &[u8], opcode: u8) -> bool {
    match data.len() {
        0 => opcode == OP_0,
        1 if (1..=16).contains(&data[0]) => opcode == OP_1 + data[0] - 1,
        1 if data[0] == 0x81 => opcode == OP_1NEGATE,
        len @ 1..=75 => usize::from(opcode) == len,
        256..=65535 => opcode == OP_PUSHDATA2,
        76..=255 => opcode == OP_PUSHDATA1,
        _ => true,
    }
}

/// Appends the shortest push of `data` to `script` (Core's
/// `CScript::operator<<(std::vector<unsigned char>)`, which, unlike
/// [`is_minimal_push`], uses a length prefix for one-byte values).
pub fn push_data(script: &mut Vec<u8>, data: &[u8]) {
    let len = data.len();
    if len < usize::from(OP_PUSHDATA1) {
        // Fits the opcode itself: len < 76.
        script.push(len as u8);
    } else if let Ok(len) = u8::try_from(len) {
        script.push(OP_PUSHDATA1);
        script.push(len);
    } else if let Ok(len) = u16::try_from(len) {
        script.push(OP_PUSHDATA2);
        script.extend_from_slice(&len.to_le_bytes());
    } else {
        script.push(OP_PUSHDATA4);
        // Scripts longer than 4 GiB cannot exist in a transaction.
        script.extend_from_slice(&(len as u32).to_le_bytes());
    }
    script.extend_from_slice(data);
}

/// Removes every occurrence of `pattern`, at an opcode boundary, from
/// `script` (Core's `FindAndDelete`), and returns how many were removed.
pub fn find_and_delete(script: &mut Vec<u8>, pattern: &[u8]) -> usize {
    if pattern.is_empty() {
        return 0;
    }
    let mut found = 0;
    let mut result = Vec::with_capacity(script.len());
    let mut kept_to = 0;
    let mut pos = 0;
    let len = script.len();
    loop {
        // Copy from `kept_to` to here, then skip every match at this boundary.
        result.extend_from_slice(&script[kept_to..pos]);
        while script[pos..].starts_with(pattern) {
            pos += pattern.len();
            found += 1;
        }
        kept_to = pos;
        if pos >= len {
            break;
        }
        let mut it = Instructions { script: script.as_slice(), pos };
        match it.next() {
            Some(Ok(_)) => pos = it.position(),
            _ => break,
        }
    }
    if found > 0 {
        result.extend_from_slice(&script[kept_to..]);
        *script = result;
    }
    found
}

/// The script with its `OP_CODESEPARATOR`s removed, as legacy signature
/// hashes serialise the script code. After a truncated push the rest is
/// kept as it is.
pub fn without_codeseparators(script: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(script.len());
    let mut kept_from = 0;
    let mut it = Instructions::new(script);
    loop {
        let start = it.position();
        match it.next() {
            Some(Ok(op)) if op.opcode == OP_CODESEPARATOR => {
                out.extend_from_slice(&script[kept_from..start]);
                kept_from = it.position();
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    out.extend_from_slice(&script[kept_from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_and_delete_cases() {
        // Core's script_FindAndDelete cases, a few of them.
        let mut s = vec![0x02, 0x03, 0x02, 0x03];
        assert_eq!(find_and_delete(&mut s, &[0x02, 0x03]), 2);
        assert!(s.is_empty());
        // Not at an opcode boundary: inside a push.
        let mut s = vec![0x02, 0xab, 0xab];
        assert_eq!(find_and_delete(&mut s, &[0xab]), 0);
        // Matches found after a previous match.
        let mut s = vec![0x01, 0x02, 0x01, 0x02, 0xab];
        assert_eq!(find_and_delete(&mut s, &[0x01, 0x02]), 2);
        assert_eq!(s, vec![0xab]);
        // The pattern is compared with raw bytes at each opcode boundary,
        // so a pattern that is only the start of an opcode still matches.
        let mut s = vec![0x03, 0x02, 0xff, 0x03];
        assert_eq!(find_and_delete(&mut s, &[0x03]), 1);
        assert_eq!(s, vec![0x02, 0xff, 0x03]);
    }

    #[test]
    fn codeseparators_removed() {
        assert_eq!(without_codeseparators(&[0xab, 0x01, 0xab, 0xab, 0x51]), vec![0x01, 0xab, 0x51]);
    }
}
