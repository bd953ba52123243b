//! How instances are allocated: on demand, or from a pool of slots reserved
//! up front (see `vm/pool.rs` for how slots are reset between tenants).

use crate::vm::pool::PoolLimits;

/// How an engine allocates the contexts, memories and tables of instances.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum InstanceAllocationStrategy {
    /// Each instance allocates what it needs when it is created and frees
    /// it when its store is dropped (the default). The exception is a
    /// linear memory's reservation: the engine keeps up to 16 released
    /// ones, reset to zeros, for its next memories, because mapping and
    /// unmapping 4 GiB costs more than the rest of an instantiation. They
    /// cost address space (and keep the data image of the last module each
    /// served), and go when the engine does.
    #[default]
    OnDemand,
    /// Slots are reserved once, when the engine is created, and reused:
    /// instantiation makes no `mmap` of its own. For hosts that create an
    /// instance per request.
    Pooling(PoolingAllocationConfig),
}

impl InstanceAllocationStrategy {
    /// The pooling strategy with default limits.
    pub fn pooling() -> InstanceAllocationStrategy {
        InstanceAllocationStrategy::Pooling(PoolingAllocationConfig::default())
    }
}

/// Sizes and counts of the pooling allocator's slots.
///
/// Every slot is reserved when the engine is created; reserving costs
/// address space (a memory slot is the memory reservation plus its guard,
/// 4 GiB + 32 MiB by default), not resident memory. When a kind of slot runs
/// out, instantiation fails with an error naming the setting to raise.
/// Memories and tables created by the host (`Memory::new`, `Table::new`)
/// are allocated on demand. Stack slots serve async calls (each of
/// `Config::async_stack_size` bytes); synchronous calls run wasm on the
/// calling thread's stack, bounded by `Config::max_wasm_stack`.
#[derive(Clone, Debug, Default)]
pub struct PoolingAllocationConfig {
    pub(crate) limits: PoolLimits,
}

impl PoolingAllocationConfig {
    /// The default limits: 1,000 instances, memories and tables; 1 MiB of
    /// context per instance; memories up to 4 GiB; tables up to 20,000
    /// elements; one memory and one table per module.
    pub fn new() -> PoolingAllocationConfig {
        PoolingAllocationConfig::default()
    }

    /// The most instances alive at once, across all stores of the engine.
    pub fn total_core_instances(&mut self, count: u32) -> &mut Self {
        self.limits.total_core_instances = count;
        self
    }

    /// The largest instance context in bytes (it grows with the numbers of
    /// functions, globals and imports a module has).
    pub fn max_core_instance_size(&mut self, bytes: usize) -> &mut Self {
        self.limits.max_core_instance_size = bytes;
        self
    }

    /// The most linear memories alive at once.
    pub fn total_memories(&mut self, count: u32) -> &mut Self {
        self.limits.total_memories = count;
        self
    }

    /// The largest size in bytes a pooled memory may have or grow to.
    pub fn max_memory_size(&mut self, bytes: usize) -> &mut Self {
        self.limits.max_memory_size = bytes;
        self
    }

    /// The most memories one module may define.
    pub fn max_memories_per_module(&mut self, count: u32) -> &mut Self {
        self.limits.max_memories_per_module = count;
        self
    }

    /// The most tables alive at once.
    pub fn total_tables(&mut self, count: u32) -> &mut Self {
        self.limits.total_tables = count;
        self
    }

    /// The most elements a pooled table may have or grow to.
    pub fn table_elements(&mut self, count: usize) -> &mut Self {
        self.limits.table_elements = count;
        self
    }

    /// The most tables one module may define.
    pub fn max_tables_per_module(&mut self, count: u32) -> &mut Self {
        self.limits.max_tables_per_module = count;
        self
    }

    /// The most fiber stacks in use at once: stores with an async call in
    /// progress, or that made one and are still alive (a store keeps its
    /// stack for its next async call). 1,000 by default.
    pub fn total_stacks(&mut self, count: u32) -> &mut Self {
        self.limits.total_stacks = count;
        self
    }
}

impl From<PoolingAllocationConfig> for InstanceAllocationStrategy {
    fn from(config: PoolingAllocationConfig) -> Self {
        InstanceAllocationStrategy::Pooling(config)
    }
}
