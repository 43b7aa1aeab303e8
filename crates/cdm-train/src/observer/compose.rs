//! Several observers as one: `()`, `&mut`, `Box`, `Vec` and tuples forward every event.
//!
//! Each event goes to the parts in order and stops at the first error, so a failing writer is
//! the last observer to see the event that broke it.

use std::path::Path;

use super::{LogRecord, RunStart, StepEnd, TrainObserver};
use crate::{Result, TrainSummary};

/// The body of an observer that forwards every event to each observer `$parts` yields.
macro_rules! forward_events {
    ($self_:ident => $parts:expr) => {
        fn on_start(&mut $self_, start: &RunStart<'_>) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_start(start))
        }

        fn on_step(&mut $self_, step: &StepEnd) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_step(step))
        }

        fn on_validation(&mut $self_, step: u64, loss: f64) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_validation(step, loss))
        }

        fn on_log(&mut $self_, record: &LogRecord) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_log(record))
        }

        fn on_checkpoint(&mut $self_, step: u64, dir: &Path) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_checkpoint(step, dir))
        }

        fn on_finish(&mut $self_, summary: &TrainSummary) -> Result<()> {
            $parts.into_iter().try_for_each(|o| o.on_finish(summary))
        }
    };
}
pub(super) use forward_events;

impl TrainObserver for () {}

impl<T: TrainObserver + ?Sized> TrainObserver for &mut T {
    forward_events!(self => [&mut **self]);
}

impl<T: TrainObserver + ?Sized> TrainObserver for Box<T> {
    forward_events!(self => [&mut **self]);
}

impl<T: TrainObserver> TrainObserver for Vec<T> {
    forward_events!(self => self.iter_mut());
}

/// Implements the observer for a tuple of observers, called left to right.
macro_rules! tuple_observer {
    ($($name:ident $index:tt),+) => {
        impl<$($name: TrainObserver),+> TrainObserver for ($($name,)+) {
            forward_events!(self => [$(&mut self.$index as &mut dyn TrainObserver),+]);
        }
    };
}

tuple_observer!(A 0, B 1);
tuple_observer!(A 0, B 1, C 2);
tuple_observer!(A 0, B 1, C 2, D 3);
