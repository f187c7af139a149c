//! The current rule set, shared by every task, swapped atomically.

use std::sync::Arc;

use tokio::sync::watch;

use super::RuleSet;

/// A handle on the rule set in force. Cloning is cheap; every clone sees the same set.
#[derive(Debug, Clone)]
pub struct Store {
    current: Arc<watch::Sender<Arc<RuleSet>>>,
}

impl Store {
    /// A store whose first rule set is `rules`.
    pub fn new(rules: RuleSet) -> Self {
        let (tx, _) = watch::channel(Arc::new(rules));
        Store {
            current: Arc::new(tx),
        }
    }

    /// A snapshot of the rule set in force.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.borrow().clone()
    }

    /// Notifications of every replacement; readers take a snapshot when told.
    pub fn subscribe(&self) -> watch::Receiver<Arc<RuleSet>> {
        self.current.subscribe()
    }

    /// Puts `rules` in force; open connections see it at their next step.
    pub fn replace(&self, rules: RuleSet) -> Arc<RuleSet> {
        let rules = Arc::new(rules);
        self.current.send_replace(Arc::clone(&rules));
        rules
    }
}
