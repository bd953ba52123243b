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
#[non_exhaustive]
pub enum UpdateDeadline {
    /// Stop: trap with [`Trap::Interrupt`](crate::Trap::Interrupt), leaving
    /// the deadline where it is.
    Interrupt,
    /// Carry on, with a new deadline this many ticks beyond the current
    /// epoch.
    Continue(u64),
    /// Yield to the async executor, then carry on with a new deadline this
    /// many ticks beyond the epoch at the time it resumes. Only in calls
    /// made with the `_async` methods; a synchronous call fails.
    Yield(u64),
    /// Await the future (for example `tokio::task::yield_now()`), then
    /// carry on with a new deadline this many ticks beyond the epoch at
    /// the time it completes. Only in calls made with the `_async` methods;
    /// a synchronous call fails unless the future is ready at once.
    YieldCustom(
        u64,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ),
}

impl std::fmt::Debug for UpdateDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateDeadline::Interrupt => f.write_str("Interrupt"),
            UpdateDeadline::Continue(t) => f.debug_tuple("Continue").field(t).finish(),
            UpdateDeadline::Yield(t) => f.debug_tuple("Yield").field(t).finish(),
            UpdateDeadline::YieldCustom(t, _) => f
                .debug_tuple("YieldCustom")
                .field(t)
                .finish_non_exhaustive(),
        }
    }
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
    let async_cx = store.opaque.async_cx;
    let waited = match answer {
        Ok(UpdateDeadline::Continue(ticks)) => Ok(ticks),
        Ok(UpdateDeadline::Interrupt) => return Resume::Trap,
        Ok(UpdateDeadline::Yield(ticks)) => match async_cx {
            Some(cx) => cx.yield_now().map(|()| ticks).map_err(Into::into),
            None => Err(anyhow::anyhow!(
                "the epoch deadline callback asked to yield in a synchronous call: \
                 call wasm with the `_async` methods to let it yield"
            )),
        },
        Ok(UpdateDeadline::YieldCustom(ticks, mut future)) => {
            crate::store::async_calls::wait_in_call(async_cx, future.as_mut()).map(|()| ticks)
        }
        Err(error) => Err(error),
    };
    match waited {
        Ok(ticks) => {
            epochs.set_deadline(&store.opaque.epoch, ticks);
            Resume::Continue
        }
        Err(error) => {
            store.opaque.pending_error = Some(error);
            Resume::Fail
        }
    }
}

/// The `out_of_fuel` builtin's decision: a charge of `cost` exceeded the
/// fuel given to wasm (the count before it is in the store context). Gives
/// wasm the next interval's worth from the reserve (or as much as the charge
/// needs, if more), yielding first when the call is async, and takes the
/// charge; traps when the reserve cannot cover it.
pub(crate) fn out_of_fuel<T: 'static>(store: &mut StoreInner<T>, cost: u64) -> Resume {
    let left = fuel_left(store.opaque.vm_store_context.fuel_consumed);
    let reserve = store.opaque.fuel_reserve;
    let needed = cost.saturating_sub(left);
    if needed > reserve {
        return Resume::Trap;
    }
    if let Some(cx) = store.opaque.async_cx
        && let Err(cancelled) = cx.yield_now()
    {
        store.opaque.pending_error = Some(cancelled.into());
        return Resume::Fail;
    }
    let interval = store.opaque.fuel_yield_interval.unwrap_or(reserve);
    let moved = interval.max(needed).min(reserve);
    store.opaque.fuel_reserve = reserve - moved;
    store.opaque.vm_store_context.fuel_consumed = fuel_counter(left + moved - cost);
    Resume::Continue
}

/// The store's fuel counter when no fuel is left. The counter is minus one
/// minus the fuel left, so that generated code's add of a cost carries
/// (as an unsigned add) exactly when the cost exceeds what is left; the
/// carry is the out-of-fuel trap.
pub(crate) const NO_FUEL_LEFT: i64 = -1;

/// The fuel left for a store's counter.
fn fuel_left(counter: i64) -> u64 {
    // A counter that is not negative cannot be produced (an add that would
    // wrap to it traps); read it as "none left".
    if counter < 0 {
        (-(counter + 1)) as u64
    } else {
        0
    }
}

/// The counter for `fuel` units left.
fn fuel_counter(fuel: u64) -> i64 {
    // More than `i64::MAX` units is more than any guest can spend.
    -(i64::try_from(fuel).unwrap_or(i64::MAX)) - 1
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
        let given = fuel_left(self.opaque.vm_store_context.fuel_consumed);
        Ok(given.saturating_add(self.opaque.fuel_reserve))
    }

    /// Sets the fuel left: with a yield interval, wasm is given one
    /// interval's worth and the rest waits in the reserve.
    pub(crate) fn set_fuel(&mut self, fuel: u64) -> crate::Result<()> {
        self.check_fuel_on()?;
        let given = match self.opaque.fuel_yield_interval {
            Some(interval) => fuel.min(interval),
            None => fuel,
        };
        self.opaque.fuel_reserve = fuel - given;
        self.opaque.vm_store_context.fuel_consumed = fuel_counter(given);
        Ok(())
    }

    pub(crate) fn fuel_async_yield_interval(&mut self, interval: Option<u64>) -> crate::Result<()> {
        self.check_fuel_on()?;
        if interval.is_some() && !self.opaque.engine().config().tunables().fuel_yields {
            bail!(
                "yielding on fuel needs fuel checks that can resume: \
                 enable `Config::async_support` with `Config::consume_fuel`"
            );
        }
        if interval == Some(0) {
            bail!("the fuel yield interval must not be zero");
        }
        let fuel = self.get_fuel()?;
        self.opaque.fuel_yield_interval = interval;
        self.set_fuel(fuel)
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

            /// Gives wasm fuel `interval` units at a time (the rest waits in
            /// the store) and, in async calls, yields to the executor each
            /// time a slice is spent, so that a guest that computes for long
            /// lets other tasks run. `None` (the default) gives wasm all
            /// the fuel at once. Needs fuel and
            /// [`Config::async_support`](crate::Config::async_support),
            /// whose fuel checks can resume. [`get_fuel`](Self::get_fuel)
            /// counts both parts. In a synchronous call, a spent slice is
            /// refilled without yielding.
            pub fn fuel_async_yield_interval(&mut self, interval: Option<u64>) -> crate::Result<()> {
                let $s = self;
                $inner.fuel_async_yield_interval(interval)
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
    use super::*;

    #[test]
    fn fuel_counter_round_trips() {
        for fuel in [0, 1, 5, i64::MAX as u64] {
            assert_eq!(fuel_left(fuel_counter(fuel)), fuel);
        }
        assert_eq!(fuel_counter(u64::MAX), i64::MIN);
        assert_eq!(fuel_counter(0), NO_FUEL_LEFT);
    }

    #[test]
    fn a_cost_carries_exactly_when_it_exceeds_the_fuel_left() {
        // What generated code does: an unsigned add of the cost.
        let carries =
            |fuel: u64, cost: u64| (fuel_counter(fuel) as u64).checked_add(cost).is_none();
        assert!(!carries(5, 5));
        assert!(carries(5, 6));
        assert!(carries(0, 1));
        assert!(!carries(u64::MAX, 1 << 62));
    }

    #[test]
    fn a_counter_that_is_not_negative_has_none_left() {
        assert_eq!(fuel_left(0), 0);
        assert_eq!(fuel_left(7), 0);
    }
}
