//! Locals and globals.

use super::FuncTranslator;
use keel_environ::GlobalIndex;

pub(super) fn local_get(t: &mut FuncTranslator<'_, '_>, index: u32) {
    let (var, _) = t.locals[index as usize];
    let v = t.b.use_var(var);
    t.state.push1(v);
}

pub(super) fn local_set(t: &mut FuncTranslator<'_, '_>, index: u32) {
    let v = t.state.pop1();
    let (var, _) = t.locals[index as usize];
    t.b.def_var(var, v);
}

pub(super) fn local_tee(t: &mut FuncTranslator<'_, '_>, index: u32) {
    let v = t.state.peekn(1)[0];
    let (var, _) = t.locals[index as usize];
    t.b.def_var(var, v);
}

pub(super) fn global_get(t: &mut FuncTranslator<'_, '_>, index: u32) {
    let v = t.env.global_get(&mut t.b, GlobalIndex::from_u32(index));
    t.state.push1(v);
}

pub(super) fn global_set(t: &mut FuncTranslator<'_, '_>, index: u32) {
    let v = t.state.pop1();
    t.env.global_set(&mut t.b, GlobalIndex::from_u32(index), v);
}
