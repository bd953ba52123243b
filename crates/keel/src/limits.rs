//! Resource limits on what wasm may allocate.

/// Decides whether memories and tables may grow. Installed with
/// [`Store::limiter`](crate::Store::limiter).
pub trait ResourceLimiter {
    /// A memory wants to grow from `current` to `desired` bytes (its own
    /// maximum, if it declares one, is `maximum`). `Ok(false)` makes
    /// `memory.grow` return -1.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> crate::Result<bool>;

    /// A table wants to grow from `current` to `desired` elements.
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> crate::Result<bool>;

    /// Most instances a store may hold.
    fn instances(&self) -> usize {
        DEFAULT_INSTANCE_LIMIT
    }

    /// Most tables a store may hold.
    fn tables(&self) -> usize {
        DEFAULT_TABLE_LIMIT
    }

    /// Most memories a store may hold.
    fn memories(&self) -> usize {
        DEFAULT_MEMORY_LIMIT
    }
}

/// Default for [`ResourceLimiter::instances`].
pub const DEFAULT_INSTANCE_LIMIT: usize = 10_000;
/// Default for [`ResourceLimiter::tables`].
pub const DEFAULT_TABLE_LIMIT: usize = 10_000;
/// Default for [`ResourceLimiter::memories`].
pub const DEFAULT_MEMORY_LIMIT: usize = 10_000;

/// A [`ResourceLimiter`] with fixed limits, built by [`StoreLimitsBuilder`].
#[derive(Clone, Debug)]
pub struct StoreLimits {
    memory_size: Option<usize>,
    table_elements: Option<usize>,
    instances: usize,
    tables: usize,
    memories: usize,
    trap_on_grow_failure: bool,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            memory_size: None,
            table_elements: None,
            instances: DEFAULT_INSTANCE_LIMIT,
            tables: DEFAULT_TABLE_LIMIT,
            memories: DEFAULT_MEMORY_LIMIT,
            trap_on_grow_failure: false,
        }
    }
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> crate::Result<bool> {
        // As Wasmtime's: growth past the memory's own maximum is refused
        // here too, so that `trap_on_grow_failure` covers it.
        let allow = self.memory_size.is_none_or(|limit| desired <= limit)
            && maximum.is_none_or(|max| desired <= max);
        if !allow && self.trap_on_grow_failure {
            anyhow::bail!(
                "memory of {desired} bytes is past the store's limit of {} bytes",
                self.memory_size.or(maximum).unwrap_or(0)
            );
        }
        Ok(allow)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> crate::Result<bool> {
        let allow = self.table_elements.is_none_or(|limit| desired <= limit)
            && maximum.is_none_or(|max| desired <= max);
        if !allow && self.trap_on_grow_failure {
            anyhow::bail!(
                "table of {desired} elements is past the store's limit of {} elements",
                self.table_elements.or(maximum).unwrap_or(0)
            );
        }
        Ok(allow)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Builds [`StoreLimits`].
#[derive(Clone, Debug, Default)]
pub struct StoreLimitsBuilder(StoreLimits);

impl StoreLimitsBuilder {
    /// No limits beyond the defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Largest size of any one linear memory, in bytes.
    pub fn memory_size(mut self, limit: usize) -> Self {
        self.0.memory_size = Some(limit);
        self
    }
    /// Largest number of elements of any one table.
    pub fn table_elements(mut self, limit: usize) -> Self {
        self.0.table_elements = Some(limit);
        self
    }
    /// Most instances.
    pub fn instances(mut self, limit: usize) -> Self {
        self.0.instances = limit;
        self
    }
    /// Most tables.
    pub fn tables(mut self, limit: usize) -> Self {
        self.0.tables = limit;
        self
    }
    /// Most memories.
    pub fn memories(mut self, limit: usize) -> Self {
        self.0.memories = limit;
        self
    }
    /// Whether a growth the limits refuse traps (with an error naming the
    /// limit) instead of making `memory.grow`/`table.grow` return -1.
    /// Off by default, as the specification wants -1; handy for hosts that
    /// prefer a guest to stop rather than carry on without memory.
    pub fn trap_on_grow_failure(mut self, trap: bool) -> Self {
        self.0.trap_on_grow_failure = trap;
        self
    }
    /// The limits.
    pub fn build(self) -> StoreLimits {
        self.0
    }
}
