//! Settings that change what code the compiler generates.

/// Code-shaping settings, shared by the compiler (which relies on them) and
/// the runtime (which must allocate memories to match).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tunables {
    /// Bytes of address space reserved for each linear memory. When this is
    /// at least 4 GiB, any 32-bit index lands inside the reservation or its
    /// guard, so accesses need no explicit bounds check.
    pub memory_reservation: u64,
    /// Bytes of inaccessible guard region after the reservation. A static
    /// offset plus access size up to this needs no check.
    pub memory_guard_size: u64,
    /// Whether generated code counts fuel.
    pub consume_fuel: bool,
    /// Whether generated code checks the epoch deadline.
    pub epoch_interruption: bool,
    /// Whether an epoch check is a single load from the store's interrupt
    /// page, which faults once the deadline is reached (the runtime's fault
    /// handler then resumes or traps), rather than a load of the interrupt
    /// word and a branch. Only where the runtime can resume from such a
    /// fault (x86-64 Linux), and only without fuel: a deadline callback
    /// reads the fuel from the store, which a check by fault does not write
    /// back.
    pub epoch_by_signal: bool,
    /// Whether, with fuel on, wasm keeps the fuel count in a register
    /// reserved for it in all generated code (Cranelift's pinned register,
    /// `r15` on x86-64) rather than in the store: calls between wasm
    /// functions then pass it for free, and only the trampolines between
    /// host and wasm, slow paths and the trap handler move it to and from
    /// the store's `fuel_consumed`.
    pub fuel_in_register: bool,
    /// Whether, with fuel on, a charge that exceeds the fuel left calls the
    /// runtime (the `out_of_fuel` builtin, through the slow-path
    /// trampoline), which may refill the count from the store's reserve,
    /// yield to an async executor, and resume the charge, rather than trap
    /// at once. Each charge then tests the carry with a branch instead of
    /// a trapping jump: compiled in only for engines with async support.
    pub fuel_yields: bool,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            memory_reservation: 1 << 32,
            memory_guard_size: 32 << 20,
            consume_fuel: false,
            epoch_interruption: false,
            epoch_by_signal: false,
            fuel_in_register: false,
            fuel_yields: false,
        }
    }
}

impl Tunables {
    /// Whether an access of `access_size` bytes at static `offset` from any
    /// 32-bit index is covered by the reservation and guard, so that a fault
    /// is the bounds check.
    pub fn access_needs_no_check(&self, offset: u64, access_size: u64) -> bool {
        self.memory_reservation >= (1 << 32)
            && offset
                .checked_add(access_size)
                .is_some_and(|end| end <= self.memory_guard_size)
    }
}
