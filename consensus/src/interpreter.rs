//! The script interpreter: Core's `EvalScript`, `VerifyScript`,
//! `VerifyWitnessProgram` and `ExecuteWitnessScript`.
//!
//! Legacy scripts, P2SH (BIP16), segwit v0 (BIP141/143), taproot key path
//! and script path (BIP341) and tapscript (BIP342) are evaluated with the
//! same limits, in the same order of checks, and with the same errors as
//! Bitcoin Core, so that the first error found is the one Core reports.

use bitcoin::hashes::{hash160, ripemd160, sha1, sha256, sha256d, Hash};
use bitcoin::{Amount, Script, Witness};

use crate::checker::{SignatureChecker, SEQUENCE_LOCKTIME_DISABLE_FLAG};
use crate::error::ScriptError;
use crate::flags::VerifyFlags;
use crate::num::{ScriptNum, DEFAULT_MAX_NUM_SIZE};
use crate::opcodes::*;
use crate::script::{
    find_and_delete, is_minimal_push, is_p2sh, is_push_only, push_data, witness_program, Instructions,
};
use crate::signature::{check_pubkey_encoding, check_signature_encoding};
use crate::taproot::{
    tapleaf_hash, verify_commitment, ANNEX_TAG, TAPROOT_CONTROL_BASE_SIZE, TAPROOT_CONTROL_MAX_SIZE,
    TAPROOT_CONTROL_NODE_SIZE, TAPROOT_LEAF_MASK, TAPROOT_LEAF_TAPSCRIPT,
};

/// The largest element a script may push or a witness may hold.
pub const MAX_SCRIPT_ELEMENT_SIZE: usize = 520;
/// The most non-push opcodes a legacy or segwit v0 script may execute.
pub const MAX_OPS_PER_SCRIPT: usize = 201;
/// The most keys an OP_CHECKMULTISIG may take.
pub const MAX_PUBKEYS_PER_MULTISIG: i32 = 20;
/// The largest legacy or segwit v0 script.
pub const MAX_SCRIPT_SIZE: usize = 10_000;
/// The most elements the stack and altstack may hold together.
pub const MAX_STACK_SIZE: usize = 1000;
/// Tapscript's validation weight cost of one signature check (BIP342).
pub const VALIDATION_WEIGHT_PER_SIGOP_PASSED: i64 = 50;
/// Tapscript's validation weight allowance beyond the witness size.
pub const VALIDATION_WEIGHT_OFFSET: i64 = 50;

/// Which rules a script runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigVersion {
    /// Legacy scripts and P2SH redeem scripts.
    Base,
    /// Segwit v0 scripts (P2WPKH, P2WSH).
    WitnessV0,
    /// A taproot key path spend (no script runs).
    Taproot,
    /// A tapscript leaf (leaf version 0xc0).
    Tapscript,
}

/// What a witness spend knows beyond the script (Core's
/// `ScriptExecutionData`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionData {
    /// The tapleaf hash of the executing tapscript.
    pub tapleaf_hash: Option<[u8; 32]>,
    /// The opcode position of the last executed OP_CODESEPARATOR
    /// (`u32::MAX` if none).
    pub codeseparator_pos: u32,
    /// SHA256 of the annex (with its compact size prefix), if present.
    pub annex_hash: Option<[u8; 32]>,
    /// Tapscript's remaining signature validation budget.
    pub validation_weight_left: i64,
}

/// The stack: elements are byte vectors, the top is the last.
pub type Stack = Vec<Vec<u8>>;

/// The settings one evaluation runs with.
struct Env<'c> {
    flags: VerifyFlags,
    checker: &'c dyn SignatureChecker,
    amount: Amount,
}

/// Core's `CastToBool`: false is any encoding of zero, negative zero
/// included.
pub fn cast_to_bool(bytes: &[u8]) -> bool {
    match bytes.split_last() {
        None => false,
        Some((&last, rest)) => rest.iter().any(|&b| b != 0) || (last != 0 && last != 0x80),
    }
}

/// Core's `ConditionStack`: the IF/ELSE nesting, kept as a count and the
/// position of the first false branch.
#[derive(Default)]
struct ConditionStack {
    size: usize,
    first_false: Option<usize>,
}

impl ConditionStack {
    fn is_empty(&self) -> bool {
        self.size == 0
    }
    fn all_true(&self) -> bool {
        self.first_false.is_none()
    }
    fn push(&mut self, value: bool) {
        if !value && self.first_false.is_none() {
            self.first_false = Some(self.size);
        }
        self.size += 1;
    }
    /// The caller has checked that the stack is not empty.
    fn pop(&mut self) {
        self.size -= 1;
        if self.first_false == Some(self.size) {
            self.first_false = None;
        }
    }
    /// The caller has checked that the stack is not empty.
    fn toggle_top(&mut self) {
        match self.first_false {
            None => self.first_false = Some(self.size - 1),
            Some(pos) if pos == self.size - 1 => self.first_false = None,
            // A false branch further down: this one stays unexecuted.
            Some(_) => {}
        }
    }
}

fn is_disabled(opcode: u8) -> bool {
    matches!(
        opcode,
        OP_CAT
            | OP_SUBSTR
            | OP_LEFT
            | OP_RIGHT
            | OP_INVERT
            | OP_AND
            | OP_OR
            | OP_XOR
            | OP_2MUL
            | OP_2DIV
            | OP_MUL
            | OP_DIV
            | OP_MOD
            | OP_LSHIFT
            | OP_RSHIFT
    )
}

/// The element `depth` places from the top (1 is the top). The caller has
/// checked the stack size.
fn top(stack: &Stack, depth: usize) -> &Vec<u8> {
    &stack[stack.len() - depth]
}

fn need(stack: &Stack, n: usize) -> Result<(), ScriptError> {
    if stack.len() < n {
        Err(ScriptError::InvalidStackOperation)
    } else {
        Ok(())
    }
}

fn pop(stack: &mut Stack) -> Result<Vec<u8>, ScriptError> {
    stack.pop().ok_or(ScriptError::InvalidStackOperation)
}

fn bool_bytes(value: bool) -> Vec<u8> {
    if value {
        vec![1]
    } else {
        Vec::new()
    }
}

/// Evaluates `script` on `stack` (Core's `EvalScript`).
pub fn eval_script(
    stack: &mut Stack,
    script: &[u8],
    flags: VerifyFlags,
    checker: &dyn SignatureChecker,
    amount: Amount,
    sigversion: SigVersion,
    execdata: &mut ExecutionData,
) -> Result<(), ScriptError> {
    let env = Env { flags, checker, amount };
    eval(stack, script, &env, sigversion, execdata)
}

fn eval(
    stack: &mut Stack,
    script: &[u8],
    env: &Env<'_>,
    sigversion: SigVersion,
    execdata: &mut ExecutionData,
) -> Result<(), ScriptError> {
    let flags = env.flags;
    let pre_tapscript = matches!(sigversion, SigVersion::Base | SigVersion::WitnessV0);
    if pre_tapscript && script.len() > MAX_SCRIPT_SIZE {
        return Err(ScriptError::ScriptSize);
    }
    let require_minimal = flags.contains(VerifyFlags::MINIMALDATA);
    let num = |bytes: &[u8]| ScriptNum::decode(bytes, require_minimal, DEFAULT_MAX_NUM_SIZE);
    let mut op_count = 0usize;
    let mut begin_code_hash = 0usize;
    let mut exec = ConditionStack::default();
    let mut altstack: Stack = Vec::new();
    execdata.codeseparator_pos = u32::MAX;

    let mut instructions = Instructions::new(script);
    let mut opcode_pos: u32 = 0;
    while let Some(next) = instructions.next() {
        let executing = exec.all_true();
        let op = next.map_err(|_| ScriptError::BadOpcode)?;
        let opcode = op.opcode;
        if op.data.len() > MAX_SCRIPT_ELEMENT_SIZE {
            return Err(ScriptError::PushSize);
        }
        if pre_tapscript && opcode > OP_16 {
            op_count += 1;
            if op_count > MAX_OPS_PER_SCRIPT {
                return Err(ScriptError::OpCount);
            }
        }
        // Disabled opcodes fail even in an unexecuted branch.
        if is_disabled(opcode) {
            return Err(ScriptError::DisabledOpcode);
        }
        if opcode == OP_CODESEPARATOR && sigversion == SigVersion::Base && flags.contains(VerifyFlags::CONST_SCRIPTCODE)
        {
            return Err(ScriptError::OpCodeSeparator);
        }

        if executing && opcode <= OP_PUSHDATA4 {
            if require_minimal && !is_minimal_push(op.data, opcode) {
                return Err(ScriptError::MinimalData);
            }
            stack.push(op.data.to_vec());
        } else if executing || (OP_IF..=OP_ENDIF).contains(&opcode) {
            match opcode {
                OP_1NEGATE | OP_1..=OP_16 => {
                    let n = i64::from(opcode) - i64::from(OP_1 - 1);
                    stack.push(ScriptNum(n).encode());
                }
                OP_NOP => {}
                OP_CHECKLOCKTIMEVERIFY => {
                    if flags.contains(VerifyFlags::CHECKLOCKTIMEVERIFY) {
                        need(stack, 1)?;
                        // Lock times need 5 bytes: they go up to 2^32 - 1.
                        let lock_time = ScriptNum::decode(top(stack, 1), require_minimal, 5)?;
                        if lock_time.0 < 0 {
                            return Err(ScriptError::NegativeLocktime);
                        }
                        if !env.checker.check_lock_time(lock_time.0) {
                            return Err(ScriptError::UnsatisfiedLocktime);
                        }
                    }
                    // Not enabled: a NOP2, never discouraged (as in Core).
                }
                OP_CHECKSEQUENCEVERIFY => {
                    if flags.contains(VerifyFlags::CHECKSEQUENCEVERIFY) {
                        need(stack, 1)?;
                        let sequence = ScriptNum::decode(top(stack, 1), require_minimal, 5)?;
                        if sequence.0 < 0 {
                            return Err(ScriptError::NegativeLocktime);
                        }
                        // With the disable flag set the argument is a NOP.
                        if sequence.0 & i64::from(SEQUENCE_LOCKTIME_DISABLE_FLAG) == 0
                            && !env.checker.check_sequence(sequence.0)
                        {
                            return Err(ScriptError::UnsatisfiedLocktime);
                        }
                    }
                    // Not enabled: a NOP3, never discouraged (as in Core).
                }
                OP_NOP1 | OP_NOP4..=OP_NOP10 => {
                    if flags.contains(VerifyFlags::DISCOURAGE_UPGRADABLE_NOPS) {
                        return Err(ScriptError::DiscourageUpgradableNops);
                    }
                }
                OP_IF | OP_NOTIF => {
                    let mut value = false;
                    if executing {
                        let cond = stack.last().ok_or(ScriptError::InvalidStackOperation)?;
                        let minimal = cond.is_empty() || (cond.len() == 1 && cond[0] == 1);
                        if sigversion == SigVersion::Tapscript && !minimal {
                            return Err(ScriptError::TapscriptMinimalIf);
                        }
                        if sigversion == SigVersion::WitnessV0 && flags.contains(VerifyFlags::MINIMALIF) && !minimal {
                            return Err(ScriptError::MinimalIf);
                        }
                        value = cast_to_bool(cond);
                        if opcode == OP_NOTIF {
                            value = !value;
                        }
                        stack.pop();
                    }
                    exec.push(value);
                }
                OP_ELSE => {
                    if exec.is_empty() {
                        return Err(ScriptError::UnbalancedConditional);
                    }
                    exec.toggle_top();
                }
                OP_ENDIF => {
                    if exec.is_empty() {
                        return Err(ScriptError::UnbalancedConditional);
                    }
                    exec.pop();
                }
                OP_VERIFY => {
                    need(stack, 1)?;
                    if !cast_to_bool(top(stack, 1)) {
                        return Err(ScriptError::Verify);
                    }
                    stack.pop();
                }
                OP_RETURN => return Err(ScriptError::OpReturn),
                OP_TOALTSTACK => altstack.push(pop(stack)?),
                OP_FROMALTSTACK => {
                    let v = altstack.pop().ok_or(ScriptError::InvalidAltstackOperation)?;
                    stack.push(v);
                }
                OP_2DROP => {
                    need(stack, 2)?;
                    stack.truncate(stack.len() - 2);
                }
                OP_2DUP => {
                    need(stack, 2)?;
                    let (a, b) = (top(stack, 2).clone(), top(stack, 1).clone());
                    stack.push(a);
                    stack.push(b);
                }
                OP_3DUP => {
                    need(stack, 3)?;
                    let (a, b, c) = (top(stack, 3).clone(), top(stack, 2).clone(), top(stack, 1).clone());
                    stack.extend([a, b, c]);
                }
                OP_2OVER => {
                    need(stack, 4)?;
                    let (a, b) = (top(stack, 4).clone(), top(stack, 3).clone());
                    stack.push(a);
                    stack.push(b);
                }
                OP_2ROT => {
                    need(stack, 6)?;
                    let at = stack.len() - 6;
                    let moved: Vec<Vec<u8>> = stack.drain(at..at + 2).collect();
                    stack.extend(moved);
                }
                OP_2SWAP => {
                    need(stack, 4)?;
                    let len = stack.len();
                    stack.swap(len - 4, len - 2);
                    stack.swap(len - 3, len - 1);
                }
                OP_IFDUP => {
                    need(stack, 1)?;
                    if cast_to_bool(top(stack, 1)) {
                        let v = top(stack, 1).clone();
                        stack.push(v);
                    }
                }
                OP_DEPTH => {
                    // The stack holds at most a few thousand elements.
                    let depth = ScriptNum(stack.len() as i64);
                    stack.push(depth.encode());
                }
                OP_DROP => {
                    pop(stack)?;
                }
                OP_DUP => {
                    need(stack, 1)?;
                    let v = top(stack, 1).clone();
                    stack.push(v);
                }
                OP_NIP => {
                    need(stack, 2)?;
                    let at = stack.len() - 2;
                    stack.remove(at);
                }
                OP_OVER => {
                    need(stack, 2)?;
                    let v = top(stack, 2).clone();
                    stack.push(v);
                }
                OP_PICK | OP_ROLL => {
                    need(stack, 2)?;
                    let n = num(top(stack, 1))?.to_i32_saturating();
                    stack.pop();
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|&n| n < stack.len())
                        .ok_or(ScriptError::InvalidStackOperation)?;
                    let at = stack.len() - n - 1;
                    let v = if opcode == OP_ROLL { stack.remove(at) } else { stack[at].clone() };
                    stack.push(v);
                }
                OP_ROT => {
                    need(stack, 3)?;
                    let len = stack.len();
                    stack.swap(len - 3, len - 2);
                    stack.swap(len - 2, len - 1);
                }
                OP_SWAP => {
                    need(stack, 2)?;
                    let len = stack.len();
                    stack.swap(len - 2, len - 1);
                }
                OP_TUCK => {
                    need(stack, 2)?;
                    let v = top(stack, 1).clone();
                    let at = stack.len() - 2;
                    stack.insert(at, v);
                }
                OP_SIZE => {
                    need(stack, 1)?;
                    // Element sizes are bounded by the transaction size, far
                    // below i64::MAX.
                    let size = ScriptNum(top(stack, 1).len() as i64);
                    stack.push(size.encode());
                }
                OP_EQUAL | OP_EQUALVERIFY => {
                    need(stack, 2)?;
                    let equal = top(stack, 2) == top(stack, 1);
                    stack.truncate(stack.len() - 2);
                    if opcode == OP_EQUALVERIFY {
                        if !equal {
                            return Err(ScriptError::EqualVerify);
                        }
                    } else {
                        stack.push(bool_bytes(equal));
                    }
                }
                OP_1ADD | OP_1SUB | OP_NEGATE | OP_ABS | OP_NOT | OP_0NOTEQUAL => {
                    need(stack, 1)?;
                    let n = num(top(stack, 1))?.0;
                    let result = match opcode {
                        OP_1ADD => n + 1,
                        OP_1SUB => n - 1,
                        OP_NEGATE => -n,
                        OP_ABS => n.abs(),
                        OP_NOT => i64::from(n == 0),
                        _ => i64::from(n != 0),
                    };
                    stack.pop();
                    stack.push(ScriptNum(result).encode());
                }
                OP_ADD
                | OP_SUB
                | OP_BOOLAND
                | OP_BOOLOR
                | OP_NUMEQUAL
                | OP_NUMEQUALVERIFY
                | OP_NUMNOTEQUAL
                | OP_LESSTHAN
                | OP_GREATERTHAN
                | OP_LESSTHANOREQUAL
                | OP_GREATERTHANOREQUAL
                | OP_MIN
                | OP_MAX => {
                    need(stack, 2)?;
                    let a = num(top(stack, 2))?.0;
                    let b = num(top(stack, 1))?.0;
                    let result = match opcode {
                        OP_ADD => a + b,
                        OP_SUB => a - b,
                        OP_BOOLAND => i64::from(a != 0 && b != 0),
                        OP_BOOLOR => i64::from(a != 0 || b != 0),
                        OP_NUMEQUAL | OP_NUMEQUALVERIFY => i64::from(a == b),
                        OP_NUMNOTEQUAL => i64::from(a != b),
                        OP_LESSTHAN => i64::from(a < b),
                        OP_GREATERTHAN => i64::from(a > b),
                        OP_LESSTHANOREQUAL => i64::from(a <= b),
                        OP_GREATERTHANOREQUAL => i64::from(a >= b),
                        OP_MIN => a.min(b),
                        _ => a.max(b),
                    };
                    stack.truncate(stack.len() - 2);
                    stack.push(ScriptNum(result).encode());
                    if opcode == OP_NUMEQUALVERIFY {
                        if !cast_to_bool(top(stack, 1)) {
                            return Err(ScriptError::NumEqualVerify);
                        }
                        stack.pop();
                    }
                }
                OP_WITHIN => {
                    need(stack, 3)?;
                    let x = num(top(stack, 3))?.0;
                    let min = num(top(stack, 2))?.0;
                    let max = num(top(stack, 1))?.0;
                    stack.truncate(stack.len() - 3);
                    stack.push(bool_bytes(min <= x && x < max));
                }
                OP_RIPEMD160 | OP_SHA1 | OP_SHA256 | OP_HASH160 | OP_HASH256 => {
                    let v = pop(stack)?;
                    let digest = match opcode {
                        OP_RIPEMD160 => ripemd160::Hash::hash(&v).to_byte_array().to_vec(),
                        OP_SHA1 => sha1::Hash::hash(&v).to_byte_array().to_vec(),
                        OP_SHA256 => sha256::Hash::hash(&v).to_byte_array().to_vec(),
                        OP_HASH160 => hash160::Hash::hash(&v).to_byte_array().to_vec(),
                        _ => sha256d::Hash::hash(&v).to_byte_array().to_vec(),
                    };
                    stack.push(digest);
                }
                OP_CODESEPARATOR => {
                    begin_code_hash = instructions.position();
                    execdata.codeseparator_pos = opcode_pos;
                }
                OP_CHECKSIG | OP_CHECKSIGVERIFY => {
                    need(stack, 2)?;
                    let success = eval_checksig(
                        top(stack, 2),
                        top(stack, 1),
                        &script[begin_code_hash..],
                        env,
                        sigversion,
                        execdata,
                    )?;
                    stack.truncate(stack.len() - 2);
                    if opcode == OP_CHECKSIGVERIFY {
                        if !success {
                            return Err(ScriptError::CheckSigVerify);
                        }
                    } else {
                        stack.push(bool_bytes(success));
                    }
                }
                OP_CHECKSIGADD => {
                    // Only tapscript knows it; elsewhere it is OP_SUCCESS or
                    // unknown.
                    if pre_tapscript {
                        return Err(ScriptError::BadOpcode);
                    }
                    need(stack, 3)?;
                    let n = num(top(stack, 2))?.0;
                    let success = eval_checksig(
                        top(stack, 3),
                        top(stack, 1),
                        &script[begin_code_hash..],
                        env,
                        sigversion,
                        execdata,
                    )?;
                    stack.truncate(stack.len() - 3);
                    stack.push(ScriptNum(n + i64::from(success)).encode());
                }
                OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => {
                    if sigversion == SigVersion::Tapscript {
                        return Err(ScriptError::TapscriptCheckMultisig);
                    }
                    let success =
                        eval_checkmultisig(stack, &script[begin_code_hash..], env, sigversion, &mut op_count)?;
                    if opcode == OP_CHECKMULTISIGVERIFY {
                        if !success {
                            return Err(ScriptError::CheckMultisigVerify);
                        }
                    } else {
                        stack.push(bool_bytes(success));
                    }
                }
                _ => return Err(ScriptError::BadOpcode),
            }
        }

        if stack.len() + altstack.len() > MAX_STACK_SIZE {
            return Err(ScriptError::StackSize);
        }
        opcode_pos = opcode_pos.wrapping_add(1);
    }

    if !exec.is_empty() {
        return Err(ScriptError::UnbalancedConditional);
    }
    Ok(())
}

/// OP_CHECKMULTISIG's work: checks the signatures, removes the arguments
/// and the dummy, and says whether all signatures matched.
fn eval_checkmultisig(
    stack: &mut Stack,
    script_code: &[u8],
    env: &Env<'_>,
    sigversion: SigVersion,
    op_count: &mut usize,
) -> Result<bool, ScriptError> {
    let flags = env.flags;
    let require_minimal = flags.contains(VerifyFlags::MINIMALDATA);
    let num = |bytes: &[u8]| ScriptNum::decode(bytes, require_minimal, DEFAULT_MAX_NUM_SIZE);

    let mut i = 1usize;
    need(stack, i)?;
    let keys = num(top(stack, i))?.to_i32_saturating();
    if !(0..=MAX_PUBKEYS_PER_MULTISIG).contains(&keys) {
        return Err(ScriptError::PubkeyCount);
    }
    // Checked just above: 0 <= keys <= 20.
    let mut keys = keys as usize;
    *op_count += keys;
    if *op_count > MAX_OPS_PER_SCRIPT {
        return Err(ScriptError::OpCount);
    }
    i += 1;
    let mut ikey = i;
    // The depth of the last key: elements above it and it are counted down
    // while cleaning up, to know which ones are signatures (NULLFAIL).
    let mut ikey2 = keys + 2;
    i += keys;
    need(stack, i)?;
    let sigs = num(top(stack, i))?.to_i32_saturating();
    let mut sigs = match usize::try_from(sigs) {
        Ok(sigs) if sigs <= keys => sigs,
        _ => return Err(ScriptError::SigCount),
    };
    i += 1;
    let mut isig = i;
    i += sigs;
    need(stack, i)?;

    let mut script_code = script_code.to_vec();
    if sigversion == SigVersion::Base {
        // Signatures cannot sign themselves: drop them from the script code.
        for k in 0..sigs {
            let mut pattern = Vec::new();
            push_data(&mut pattern, top(stack, isig + k));
            let found = find_and_delete(&mut script_code, &pattern);
            if found > 0 && flags.contains(VerifyFlags::CONST_SCRIPTCODE) {
                return Err(ScriptError::SigFindAndDelete);
            }
        }
    }

    let mut success = true;
    while success && sigs > 0 {
        let sig = top(stack, isig);
        let pubkey = top(stack, ikey);
        check_signature_encoding(sig, flags)?;
        check_pubkey_encoding(pubkey, flags, sigversion)?;
        if env.checker.check_ecdsa_signature(sig, pubkey, &script_code, env.amount, sigversion) {
            isig += 1;
            sigs -= 1;
        }
        ikey += 1;
        keys -= 1;
        // More signatures left than keys: they cannot all match.
        if sigs > keys {
            success = false;
        }
    }

    // Remove the arguments, dummy excepted.
    while i > 1 {
        i -= 1;
        if !success && flags.contains(VerifyFlags::NULLFAIL) && ikey2 == 0 && !top(stack, 1).is_empty() {
            return Err(ScriptError::SigNullFail);
        }
        ikey2 = ikey2.saturating_sub(1);
        stack.pop();
    }
    // The dummy element, consumed because of an off-by-one in the original
    // implementation.
    need(stack, 1)?;
    if flags.contains(VerifyFlags::NULLDUMMY) && !top(stack, 1).is_empty() {
        return Err(ScriptError::SigNullDummy);
    }
    stack.pop();
    Ok(success)
}

/// One signature check of OP_CHECKSIG(VERIFY) or OP_CHECKSIGADD (Core's
/// `EvalChecksig`): `Ok(false)` is a failed check that does not abort.
fn eval_checksig(
    sig: &[u8],
    pubkey: &[u8],
    script_code: &[u8],
    env: &Env<'_>,
    sigversion: SigVersion,
    execdata: &mut ExecutionData,
) -> Result<bool, ScriptError> {
    let flags = env.flags;
    match sigversion {
        SigVersion::Base | SigVersion::WitnessV0 => {
            let mut script_code = script_code.to_vec();
            if sigversion == SigVersion::Base {
                let mut pattern = Vec::new();
                push_data(&mut pattern, sig);
                let found = find_and_delete(&mut script_code, &pattern);
                if found > 0 && flags.contains(VerifyFlags::CONST_SCRIPTCODE) {
                    return Err(ScriptError::SigFindAndDelete);
                }
            }
            check_signature_encoding(sig, flags)?;
            check_pubkey_encoding(pubkey, flags, sigversion)?;
            let success = env.checker.check_ecdsa_signature(sig, pubkey, &script_code, env.amount, sigversion);
            if !success && flags.contains(VerifyFlags::NULLFAIL) && !sig.is_empty() {
                return Err(ScriptError::SigNullFail);
            }
            Ok(success)
        }
        SigVersion::Tapscript => {
            let success = !sig.is_empty();
            if success {
                execdata.validation_weight_left -= VALIDATION_WEIGHT_PER_SIGOP_PASSED;
                if execdata.validation_weight_left < 0 {
                    return Err(ScriptError::TapscriptValidationWeight);
                }
            }
            if pubkey.is_empty() {
                return Err(ScriptError::TapscriptEmptyPubkey);
            }
            if pubkey.len() == 32 {
                if success {
                    env.checker.check_schnorr_signature(sig, pubkey, sigversion, execdata)?;
                }
            } else if flags.contains(VerifyFlags::DISCOURAGE_UPGRADABLE_PUBKEYTYPE) {
                return Err(ScriptError::DiscourageUpgradablePubkeyType);
            }
            // Unknown key types succeed, for future soft forks.
            Ok(success)
        }
        // Key path spends run no script.
        SigVersion::Taproot => Err(ScriptError::UnknownError),
    }
}

/// Runs a segwit v0 script or tapscript on its witness stack (Core's
/// `ExecuteWitnessScript`).
fn execute_witness_script(
    stack: &[Vec<u8>],
    script: &[u8],
    env: &Env<'_>,
    sigversion: SigVersion,
    execdata: &mut ExecutionData,
) -> Result<(), ScriptError> {
    if sigversion == SigVersion::Tapscript {
        // OP_SUCCESSx decides before anything else, even the limits.
        for op in Instructions::new(script) {
            let op = op.map_err(|_| ScriptError::BadOpcode)?;
            if is_op_success(op.opcode) {
                if env.flags.contains(VerifyFlags::DISCOURAGE_OP_SUCCESS) {
                    return Err(ScriptError::DiscourageOpSuccess);
                }
                return Ok(());
            }
        }
        if stack.len() > MAX_STACK_SIZE {
            return Err(ScriptError::StackSize);
        }
    }
    if stack.iter().any(|e| e.len() > MAX_SCRIPT_ELEMENT_SIZE) {
        return Err(ScriptError::PushSize);
    }
    let mut stack = stack.to_vec();
    eval(&mut stack, script, env, sigversion, execdata)?;
    // Witness scripts must leave exactly one true element.
    if stack.len() != 1 {
        return Err(ScriptError::CleanStack);
    }
    if !cast_to_bool(&stack[0]) {
        return Err(ScriptError::EvalFalse);
    }
    Ok(())
}

/// The serialized size of a witness: its element count and elements, each
/// with its length prefix.
fn witness_serialized_size(witness: &[Vec<u8>]) -> usize {
    fn compact_size_len(n: usize) -> usize {
        match n {
            0..=0xfc => 1,
            0xfd..=0xffff => 3,
            0x1_0000..=0xffff_ffff => 5,
            _ => 9,
        }
    }
    compact_size_len(witness.len()) + witness.iter().map(|e| compact_size_len(e.len()) + e.len()).sum::<usize>()
}

/// Verifies a witness program (Core's `VerifyWitnessProgram`).
fn verify_witness_program(
    witness: &[Vec<u8>],
    version: u8,
    program: &[u8],
    env: &Env<'_>,
    is_p2sh: bool,
) -> Result<(), ScriptError> {
    let flags = env.flags;
    let mut execdata = ExecutionData::default();
    if version == 0 {
        match program.len() {
            32 => {
                let (script, stack) = witness.split_last().ok_or(ScriptError::WitnessProgramWitnessEmpty)?;
                if sha256::Hash::hash(script).as_byte_array() != program {
                    return Err(ScriptError::WitnessProgramMismatch);
                }
                execute_witness_script(stack, script, env, SigVersion::WitnessV0, &mut execdata)
            }
            20 => {
                if witness.len() != 2 {
                    return Err(ScriptError::WitnessProgramMismatch);
                }
                let mut script = Vec::with_capacity(25);
                script.extend_from_slice(&[OP_DUP, OP_HASH160]);
                push_data(&mut script, program);
                script.extend_from_slice(&[OP_EQUALVERIFY, OP_CHECKSIG]);
                execute_witness_script(witness, &script, env, SigVersion::WitnessV0, &mut execdata)
            }
            _ => Err(ScriptError::WitnessProgramWrongLength),
        }
    } else if version == 1 && program.len() == 32 && !is_p2sh {
        if !flags.contains(VerifyFlags::TAPROOT) {
            return Ok(());
        }
        if witness.is_empty() {
            return Err(ScriptError::WitnessProgramWitnessEmpty);
        }
        let mut stack = witness;
        if stack.len() >= 2 {
            if let Some((annex, rest)) = stack.split_last() {
                if annex.first() == Some(&ANNEX_TAG) {
                    let mut e = sha256::Hash::engine();
                    crate::sighash::write_compact_size(&mut e, annex.len());
                    bitcoin::hashes::HashEngine::input(&mut e, annex);
                    execdata.annex_hash = Some(sha256::Hash::from_engine(e).to_byte_array());
                    stack = rest;
                }
            }
        }
        if stack.len() == 1 {
            // Key path spend.
            return env.checker.check_schnorr_signature(&stack[0], program, SigVersion::Taproot, &execdata);
        }
        // Script path spend: at least two elements remain here.
        let (control, rest) = stack.split_last().ok_or(ScriptError::WitnessProgramWitnessEmpty)?;
        let (script, stack) = rest.split_last().ok_or(ScriptError::WitnessProgramWitnessEmpty)?;
        if control.len() < TAPROOT_CONTROL_BASE_SIZE
            || control.len() > TAPROOT_CONTROL_MAX_SIZE
            || !(control.len() - TAPROOT_CONTROL_BASE_SIZE).is_multiple_of(TAPROOT_CONTROL_NODE_SIZE)
        {
            return Err(ScriptError::TaprootWrongControlSize);
        }
        let leaf_version = control[0] & TAPROOT_LEAF_MASK;
        let leaf_hash = tapleaf_hash(leaf_version, script);
        if !verify_commitment(control, program, &leaf_hash) {
            return Err(ScriptError::WitnessProgramMismatch);
        }
        execdata.tapleaf_hash = Some(leaf_hash);
        if leaf_version == TAPROOT_LEAF_TAPSCRIPT {
            // The budget counts the whole witness, annex included.
            let size = witness_serialized_size(witness);
            execdata.validation_weight_left = i64::try_from(size).unwrap_or(i64::MAX) + VALIDATION_WEIGHT_OFFSET;
            return execute_witness_script(stack, script, env, SigVersion::Tapscript, &mut execdata);
        }
        if flags.contains(VerifyFlags::DISCOURAGE_UPGRADABLE_TAPROOT_VERSION) {
            return Err(ScriptError::DiscourageUpgradableTaprootVersion);
        }
        Ok(())
    } else if !is_p2sh && version == 1 && program == [0x4e, 0x73] {
        // Pay-to-anchor (`OP_1 <0x4e73>`, Core 28): anyone can spend, and
        // exempt from the discouragement of unknown programs.
        Ok(())
    } else {
        if flags.contains(VerifyFlags::DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM) {
            return Err(ScriptError::DiscourageUpgradableWitnessProgram);
        }
        // Unknown versions and sizes are anyone-can-spend, for soft forks.
        Ok(())
    }
}

/// Verifies that `script_sig` and `witness` satisfy `script_pubkey`
/// (Core's `VerifyScript`), for an output of `amount`, under `flags`, with
/// `checker` checking signatures and lock times against the spending
/// transaction.
///
/// Core asserts that CLEANSTACK comes with P2SH and WITNESS, and WITNESS
/// with P2SH; here other combinations are evaluated as given.
pub fn verify_script(
    script_sig: &Script,
    script_pubkey: &Script,
    witness: &Witness,
    amount: Amount,
    flags: VerifyFlags,
    checker: &dyn SignatureChecker,
) -> Result<(), ScriptError> {
    let witness: Vec<Vec<u8>> = witness.iter().map(<[u8]>::to_vec).collect();
    verify_script_bytes(script_sig.as_bytes(), script_pubkey.as_bytes(), &witness, amount, flags, checker)
}

/// [`verify_script`] on raw bytes, with the witness as a list of elements.
pub fn verify_script_bytes(
    script_sig: &[u8],
    script_pubkey: &[u8],
    witness: &[Vec<u8>],
    amount: Amount,
    flags: VerifyFlags,
    checker: &dyn SignatureChecker,
) -> Result<(), ScriptError> {
    let env = Env { flags, checker, amount };
    if flags.contains(VerifyFlags::SIGPUSHONLY) && !is_push_only(script_sig) {
        return Err(ScriptError::SigPushOnly);
    }
    let mut had_witness = false;
    let mut execdata = ExecutionData::default();
    let mut stack: Stack = Vec::new();
    eval(&mut stack, script_sig, &env, SigVersion::Base, &mut execdata)?;
    let stack_copy = if flags.contains(VerifyFlags::P2SH) { Some(stack.clone()) } else { None };
    eval(&mut stack, script_pubkey, &env, SigVersion::Base, &mut execdata)?;
    match stack.last() {
        Some(top) if cast_to_bool(top) => {}
        _ => return Err(ScriptError::EvalFalse),
    }

    if flags.contains(VerifyFlags::WITNESS) {
        if let Some((version, program)) = witness_program(script_pubkey) {
            had_witness = true;
            if !script_sig.is_empty() {
                return Err(ScriptError::WitnessMalleated);
            }
            verify_witness_program(witness, version, program, &env, false)?;
            // The stack of a witness spend is not clean; CLEANSTACK is
            // about the scriptSig.
            stack.truncate(1);
        }
    }

    if let Some(stack_copy) = stack_copy.filter(|_| is_p2sh(script_pubkey)) {
        if !is_push_only(script_sig) {
            return Err(ScriptError::SigPushOnly);
        }
        stack = stack_copy;
        // Not empty: an empty stack would have failed `HASH160 <h> EQUAL`.
        let redeem_script = pop(&mut stack)?;
        eval(&mut stack, &redeem_script, &env, SigVersion::Base, &mut execdata)?;
        match stack.last() {
            Some(top) if cast_to_bool(top) => {}
            _ => return Err(ScriptError::EvalFalse),
        }
        if flags.contains(VerifyFlags::WITNESS) {
            if let Some((version, program)) = witness_program(&redeem_script) {
                had_witness = true;
                let mut expected = Vec::with_capacity(redeem_script.len() + 1);
                push_data(&mut expected, &redeem_script);
                if script_sig != expected.as_slice() {
                    return Err(ScriptError::WitnessMalleatedP2sh);
                }
                verify_witness_program(witness, version, program, &env, true)?;
                stack.truncate(1);
            }
        }
    }

    if flags.contains(VerifyFlags::CLEANSTACK) && stack.len() != 1 {
        return Err(ScriptError::CleanStack);
    }
    if flags.contains(VerifyFlags::WITNESS) && !had_witness && !witness.is_empty() {
        return Err(ScriptError::WitnessUnexpected);
    }
    Ok(())
}
