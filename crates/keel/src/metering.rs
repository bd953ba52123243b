//! Fuel and epoch deadlines: how a host bounds the CPU a guest may use.
//!
//! Both are off unless the [`Config`](crate::Config) turns them on
//! ([`Config::consume_fuel`](crate::Config::consume_fuel),
//! [`Config::epoch_interruption`](crate::Config::epoch_interruption)); the
//! names and behaviour are Wasmtime 48's.
//!
//! ```
//! # fn main() -> keel::Result<()> {
//! use keel::{Config, Engine, Instance, Module, Store, Trap};
//! let mut config = Config::new();
//! config.consume_fuel(true);
//! let engine = Engine::new(&config)?;
//! let module = Module::new(&engine, r#"(module (func (export "spin") (loop (br 0))))"#)?;
//! let mut store = Store::new(&engine, ());
//! store.set_fuel(10_000)?;
//! let instance = Instance::new(&mut store, &module, &[])?;
//! let spin = instance.get_typed_func::<(), ()>(&mut store, "spin")?;
//! let err = spin.call(&mut store, ()).unwrap_err();
//! assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::OutOfFuel));
//! assert_eq!(store.get_fuel()?, 0);
//! # Ok(())
//! # }
//! ```

use crate::store::StoreInner;
use crate::vm::libcalls::Resume;
use crate::{Caller, Store, StoreContextMut};
use anyhow::bail;

/// What a deadline callback
/// ([`Store::epoch_deadline_callback`]) tells wasm to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpdateDeadline {
    /// Stop: trap with [`Trap::Interrupt`](crate::Trap::Interrupt), leaving
    /// the deadline where it is.
    Interrupt,
    /// Carry on, with a new deadline this many ticks beyond the current
    /// epoch.
    Continue(u64),
}

/// The closure behind [`Store::epoch_deadline_callback`].
pub(crate) type EpochCallback<T> =
    dyn FnMut(StoreContextMut<'_, T>) -> crate::Result<UpdateDeadline> + Send + Sync;

/// The `new_epoch` builtin's decision, made on the guest's thread.
pub(crate) fn new_epoch<T: 'static>(store: &mut StoreInner<T>) -> Resume {
    let engine = store.opaque.engine().clone();
    let epochs = engine.epochs();
    if epochs.current() < store.opaque.epoch.deadline() {
        // The word was set for an earlier deadline that the host has since
        // moved: re-arm for the current one.
        epochs.set_deadline(
            &store.opaque.epoch,
            store.opaque.epoch.deadline() - epochs.current(),
        );
        return Resume::Continue;
    }
    let Some(mut callback) = store.epoch_callback.take() else {
        return Resume::Trap;
    };
    let answer = callback(StoreContextMut(store));
    // The callback may have installed another callback; the newest wins.
    if store.epoch_callback.is_none() {
        store.epoch_callback = Some(callback);
    }
    match answer {
        Ok(UpdateDeadline::Continue(ticks)) => {
            epochs.set_deadline(&store.opaque.epoch, ticks);
            Resume::Continue
        }
        Ok(UpdateDeadline::Interrupt) => Resume::Trap,
        Err(error) => {
            store.opaque.pending_error = Some(error);
            Resume::Fail
        }
    }
}

fn fuel_left(consumed: i64) -> u64 {
    // `consumed` is the negated fuel left; past zero, none is left.
    consumed.checked_neg().map_or(0, |left| left.max(0) as u64)
}

impl<T: 'static> StoreInner<T> {
    fn check_fuel_on(&self) -> crate::Result<()> {
        if !self.opaque.engine().config().tunables().consume_fuel {
            bail!("fuel is not configured in this store (enable it with `Config::consume_fuel`)");
        }
        Ok(())
    }

    pub(crate) fn get_fuel(&self) -> crate::Result<u64> {
        self.check_fuel_on()?;
        Ok(fuel_left(self.opaque.vm_store_context.fuel_consumed))
    }

    pub(crate) fn set_fuel(&mut self, fuel: u64) -> crate::Result<()> {
        self.check_fuel_on()?;
        // More than `i64::MAX` units is more than any guest can spend.
        let fuel = i64::try_from(fuel).unwrap_or(i64::MAX);
        self.opaque.vm_store_context.fuel_consumed = -fuel;
        Ok(())
    }

    pub(crate) fn set_epoch_deadline(&mut self, ticks_beyond_current: u64) {
        let engine = self.opaque.engine().clone();
        engine
            .epochs()
            .set_deadline(&self.opaque.epoch, ticks_beyond_current);
    }
}

macro_rules! metering_methods {
    ($ty:ident $(<$lt:lifetime>)?, |$s:ident| $inner:expr) => {
        impl<$($lt,)? T: 'static> $ty<$($lt,)? T> {
            /// The fuel left in this store. Fails if fuel is not enabled
            /// ([`Config::consume_fuel`](crate::Config::consume_fuel)).
            pub fn get_fuel(&self) -> crate::Result<u64> {
                let $s = self;
                $inner.get_fuel()
            }

            /// Sets the fuel left in this store (a store starts with none).
            /// Fails if fuel is not enabled. Inside a host function, this is
            /// how the host charges (or refunds) the guest.
            pub fn set_fuel(&mut self, fuel: u64) -> crate::Result<()> {
                let $s = self;
                $inner.set_fuel(fuel)
            }

            /// Sets the epoch deadline `ticks_beyond_current` ticks of
            /// [`Engine::increment_epoch`](crate::Engine::increment_epoch)
            /// from now. Wasm running past it traps with
            /// [`Trap::Interrupt`](crate::Trap::Interrupt), or asks the
            /// callback set with `epoch_deadline_callback`. Has an effect
            /// only with
            /// [`Config::epoch_interruption`](crate::Config::epoch_interruption).
            pub fn set_epoch_deadline(&mut self, ticks_beyond_current: u64) {
                let $s = self;
                $inner.set_epoch_deadline(ticks_beyond_current)
            }

            /// Wasm past its epoch deadline traps with
            /// [`Trap::Interrupt`](crate::Trap::Interrupt) (the default).
            pub fn epoch_deadline_trap(&mut self) {
                let $s = self;
                $inner.epoch_callback = None;
            }

            /// Wasm past its epoch deadline calls `callback`, which returns
            /// [`UpdateDeadline::Continue`] with a new deadline,
            /// [`UpdateDeadline::Interrupt`] to trap, or an error that the
            /// interrupted call returns.
            pub fn epoch_deadline_callback(
                &mut self,
                callback: impl FnMut(StoreContextMut<'_, T>) -> crate::Result<UpdateDeadline>
                + Send
                + Sync
                + 'static,
            ) {
                let $s = self;
                $inner.epoch_callback = Some(Box::new(callback));
            }
        }
    };
}

metering_methods!(Store, |s| s.inner);
metering_methods!(StoreContextMut<'a>, |s| s.0);
metering_methods!(Caller<'a>, |s| s.store.0);

#[cfg(test)]
mod tests {
    use super::fuel_left;

    #[test]
    fn fuel_left_saturates() {
        assert_eq!(fuel_left(-5), 5);
        assert_eq!(fuel_left(0), 0);
        assert_eq!(fuel_left(7), 0);
        assert_eq!(fuel_left(i64::MIN), 0);
    }
}
