//! Starting and stopping delayed sequences (dunning): a sequence's next step is a job with
//! a future `run_at` in the customer's lane.

use super::{Log, Pipeline, WorkError};
use crate::domain::PaymentFact;
use crate::rules::Step;

pub(crate) async fn execute(
    _p: &Pipeline,
    _fact: &PaymentFact,
    _step: &Step,
    name: &str,
    _start: bool,
    _log: &mut Log,
) -> Result<(), WorkError> {
    Err(WorkError::Terminal(format!(
        "sequence {name}: sequences are not wired to the rules engine yet"
    )))
}
