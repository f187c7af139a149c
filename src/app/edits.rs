//! Run-time changes: faults and routes created, changed and removed through the control
//! endpoint, the kill switch, and expiry. Each builds a candidate set of overrides, and
//! [`Switchboard::commit`] validates the merged result whole before anything changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{ChangeError, State, Switchboard};
use crate::fault_json::FaultUpdate;
use crate::proxy::caps::Caps;
use crate::rules::{Fault, Policy, Route, Subject, validate};
use crate::store::{
    FaultMeta, FileRules, Overrides, Removal, ResetReport, RuleSet, Source, Unknown, diff,
    fault_event,
};
use crate::telemetry::{EventKind, EventSource, timestamp};

/// A fault as the control endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultInfo {
    /// Its definition.
    #[serde(flatten)]
    pub fault: Fault,
    /// Where it came from.
    pub source: Source,
    /// When it switches itself off (RFC 3339), if it has a time to live.
    pub expires_at: Option<String>,
    /// For a fault with `max_active`: how many connections, requests or commands are under
    /// it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<usize>,
}

impl FaultInfo {
    pub(crate) fn of(rules: &RuleSet, fault: &Fault, caps: &Caps) -> Self {
        let meta = rules.meta(&fault.name);
        FaultInfo {
            fault: fault.clone(),
            source: meta.map_or(Source::File, |m| m.source),
            expires_at: meta.and_then(|m| m.expires_at).map(timestamp),
            active: fault.max_active.map(|_| caps.active(&fault.name)),
        }
    }
}

fn unknown(name: &str) -> impl FnOnce(Unknown) -> ChangeError + '_ {
    move |_| ChangeError::UnknownFault(name.to_string())
}

/// When a fault given `ttl` now expires; a time past what the clock can hold is refused.
fn expiry(ttl: Option<Duration>) -> Result<Option<SystemTime>, ChangeError> {
    ttl.map(|d| {
        SystemTime::now()
            .checked_add(d)
            .ok_or_else(|| ChangeError::Invalid {
                field: Some("ttl".into()),
                message: format!("ttl {} is too long", humantime::format_duration(d)),
            })
    })
    .transpose()
}

impl Switchboard {
    /// Every fault in force, in order.
    pub fn faults(&self) -> Vec<FaultInfo> {
        let rules = self.store().current();
        rules
            .faults()
            .iter()
            .map(|f| FaultInfo::of(&rules, f, &self.inner.ctx.caps))
            .collect()
    }

    /// One fault.
    pub fn fault(&self, name: &str) -> Result<FaultInfo, ChangeError> {
        let rules = self.store().current();
        let fault = rules
            .fault(name)
            .ok_or_else(|| ChangeError::UnknownFault(name.into()))?;
        Ok(FaultInfo::of(&rules, fault, &self.inner.ctx.caps))
    }

    /// Adds a fault (source `api`), optionally with a time to live.
    pub async fn create_fault(
        &self,
        fault: Fault,
        ttl: Option<Duration>,
    ) -> Result<FaultInfo, ChangeError> {
        let mut state = self.inner.state.lock().await;
        if self.store().current().fault(&fault.name).is_some() {
            return Err(ChangeError::FaultExists(fault.name));
        }
        let name = fault.name.clone();
        let mut candidate = state.overrides.clone();
        candidate.create(fault, expiry(ttl)?);
        let rules = self.commit(&mut state, candidate, EventSource::Api).await?;
        self.fault_in(&rules, &name)
    }

    /// Changes a fault, wherever it was defined.
    pub async fn update_fault(
        &self,
        name: &str,
        update: FaultUpdate,
    ) -> Result<FaultInfo, ChangeError> {
        let mut state = self.inner.state.lock().await;
        let FaultUpdate {
            enabled,
            probability,
            direction,
            kind,
            max_active,
            ttl,
        } = update;
        let expires_at = ttl.map(expiry).transpose()?;
        let change = |f: &mut Fault| {
            if let Some(v) = enabled {
                f.enabled = v;
            }
            if let Some(v) = probability {
                f.probability = v;
            }
            if let Some(v) = direction {
                f.direction = v;
            }
            if let Some(v) = kind {
                f.kind = v;
            }
            if let Some(v) = max_active {
                f.max_active = v;
            }
        };
        // One fault changes and nothing else: validate it alone and swap in a set that shares
        // everything else, so the cost does not grow with the number of faults.
        let current = self.store().current();
        let before = Arc::clone(
            current
                .fault(name)
                .ok_or_else(|| ChangeError::UnknownFault(name.into()))?,
        );
        let mut after = (*before).clone();
        change(&mut after);
        check_one(&current, &after)?;
        let state = &mut *state;
        let (fault, expires_at) = state
            .overrides
            .update(name, &state.files, |f| *f = after, expires_at)
            .map_err(unknown(name))?;
        let meta = FaultMeta {
            source: current.meta(name).map_or(Source::File, |m| m.source),
            expires_at,
        };
        let next = match current.with_fault(fault, meta) {
            Some(next) => next,
            None => state.overrides.merge(&state.files),
        };
        let rules = self.store().replace(next);
        if let Some(now) = rules.fault(name)
            && let Some(event) = fault_event(Some(&before), now)
        {
            self.inner.events.emit(EventSource::Api, event);
        }
        self.inner.expiry_changed.notify_one();
        self.fault_in(&rules, name)
    }

    /// Removes an API-created fault, or switches off a file-defined one.
    pub async fn remove_fault(&self, name: &str) -> Result<Removal, ChangeError> {
        let mut state = self.inner.state.lock().await;
        let mut candidate = state.overrides.clone();
        let removal = candidate
            .remove(name, &state.files)
            .map_err(unknown(name))?;
        self.commit(&mut state, candidate, EventSource::Api).await?;
        Ok(removal)
    }

    /// The kill switch: every fault off at once, API-created faults removed, every route
    /// enabled. Says what it turned back.
    pub async fn reset(&self) -> ResetReport {
        let mut state = self.inner.state.lock().await;
        let current = self.store().current();
        let structural =
            state.overrides.has_created() || current.routes().iter().any(|r| !r.enabled);
        let report = if structural {
            let mut candidate = state.overrides.clone();
            let report = candidate.reset(&state.files, &current);
            // Switching faults off cannot make valid rules invalid, nor bind anything.
            if let Err(e) = self.commit(&mut state, candidate, EventSource::Api).await {
                tracing::error!(error = %e, "reset could not be applied");
            }
            report
        } else {
            // Only faults switch off: nothing to validate or bind, and only they change.
            let state = &mut *state;
            let report = state.overrides.reset(&state.files, &current);
            self.switch_off(
                &current,
                &report.turned_off,
                &mut state.overrides,
                &state.files,
                EventSource::Api,
            );
            report
        };
        self.inner.events.emit(
            EventSource::Api,
            EventKind::Reset {
                turned_off: report.turned_off.clone(),
                routes_enabled: report.routes_enabled.clone(),
            },
        );
        report
    }

    /// Puts in force `current` with `names` switched off (their overrides already say so),
    /// copying only what changes, and announces each (as expired when `source` is a TTL).
    fn switch_off(
        &self,
        current: &RuleSet,
        names: &[String],
        overrides: &mut Overrides,
        files: &FileRules,
        source: EventSource,
    ) {
        let changes: Vec<(Fault, FaultMeta)> = names
            .iter()
            .filter_map(|name| {
                let mut fault = Fault::clone(current.fault(name)?);
                fault.enabled = false;
                let source = current.meta(name).map_or(Source::File, |m| m.source);
                Some((
                    fault,
                    FaultMeta {
                        source,
                        expires_at: None,
                    },
                ))
            })
            .collect();
        let next = match current.with_faults(changes) {
            Some(next) => next,
            None => overrides.merge(files),
        };
        let new = self.store().replace(next);
        for name in names {
            if let (Some(before), Some(after)) = (current.fault(name), new.fault(name))
                && let Some(event) = fault_event(Some(before), after)
            {
                self.announce(source, event);
            }
        }
        self.inner.expiry_changed.notify_one();
    }

    /// Switches off every fault whose time to live has run out.
    pub(crate) async fn expire_due(&self) {
        let mut state = self.inner.state.lock().await;
        let now = SystemTime::now();
        let rules = self.store().current();
        let due: Vec<String> = rules
            .faults()
            .iter()
            .filter(|f| {
                f.enabled
                    && rules
                        .meta(&f.name)
                        .and_then(|m| m.expires_at)
                        .is_some_and(|t| t <= now)
            })
            .map(|f| f.name.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        self.turn_off(&mut state, &rules, &due, EventSource::Ttl);
    }

    /// Switches `names` off in the overrides and puts that in force, announced as `source`
    /// did it. Switching faults off needs no validation and changes only them.
    pub(super) fn turn_off(
        &self,
        state: &mut State,
        rules: &RuleSet,
        names: &[String],
        source: EventSource,
    ) {
        for name in names {
            let _ = state
                .overrides
                .update(name, &state.files, |f| f.enabled = false, Some(None));
        }
        self.switch_off(rules, names, &mut state.overrides, &state.files, source);
    }

    fn fault_in(&self, rules: &RuleSet, name: &str) -> Result<FaultInfo, ChangeError> {
        let fault = rules
            .fault(name)
            .ok_or_else(|| ChangeError::UnknownFault(name.to_string()))?;
        Ok(FaultInfo::of(rules, fault, &self.inner.ctx.caps))
    }

    /// Puts new file rules in force with the run-time changes on top.
    pub(super) async fn replace_files(
        &self,
        state: &mut State,
        files: FileRules,
    ) -> Result<(), ChangeError> {
        let previous = std::mem::replace(&mut state.files, files);
        let candidate = state.overrides.clone();
        match self.commit(state, candidate, EventSource::File).await {
            Ok(_) => Ok(()),
            Err(e) => {
                state.files = previous;
                Err(e)
            }
        }
    }

    /// Validates the merge of the files and `candidate`, binds what it adds, swaps it in and
    /// announces what changed. On any error nothing changes.
    pub(super) async fn commit(
        &self,
        state: &mut State,
        candidate: Overrides,
        source: EventSource,
    ) -> Result<Arc<RuleSet>, ChangeError> {
        self.commit_bound(state, candidate, source, Vec::new())
            .await
    }

    /// [`Switchboard::commit`], with listeners already bound for some routes (those the API
    /// created on port 0, whose real port had to be known first).
    pub(super) async fn commit_bound(
        &self,
        state: &mut State,
        mut candidate: Overrides,
        source: EventSource,
        prebound: Vec<(String, crate::proxy::bind::Listener)>,
    ) -> Result<Arc<RuleSet>, ChangeError> {
        let merged = candidate.merge(&state.files);
        check(&merged)?;
        let prepared = state
            .routes
            .prepare(&merged, prebound)
            .await
            .map_err(ChangeError::Bind)?;
        let old = self.store().current();
        let new = self.store().replace(merged);
        state.routes.commit(prepared, &new, &self.inner.ctx).await;
        state.overrides = candidate;
        for event in diff(&old, &new) {
            self.announce(source, event);
        }
        self.inner.expiry_changed.notify_one();
        Ok(new)
    }

    /// Emits `event`; a fault switched off by its time to live is announced as expired.
    fn announce(&self, source: EventSource, event: EventKind) {
        let event = match (source, event) {
            (EventSource::Ttl, EventKind::FaultDisabled { fault }) => {
                EventKind::FaultExpired { fault }
            }
            (_, event) => event,
        };
        self.inner.events.emit(source, event);
    }
}

/// Validates one changed fault against the route it is on.
fn check_one(rules: &RuleSet, fault: &Fault) -> Result<(), ChangeError> {
    let routes: Vec<&Route> = rules
        .route(&fault.route)
        .map(|r| r.as_ref())
        .into_iter()
        .collect();
    let policy = Policy {
        allow_ephemeral_listen: true,
    };
    match validate(&routes, &[fault], policy)
        .into_iter()
        .find(|f| matches!(f.subject, Subject::Fault(_)))
    {
        None => Ok(()),
        Some(finding) => Err(ChangeError::Invalid {
            field: finding.field.map(|f| request_field(fault, f)),
            message: format!("{}: {}", fault.name, finding.message),
        }),
    }
}

/// Validates a merged rule set; files were already held to the stricter file policy.
fn check(rules: &RuleSet) -> Result<(), ChangeError> {
    let routes: Vec<&Route> = rules.routes().iter().map(|r| r.as_ref()).collect();
    let faults: Vec<&Fault> = rules.faults().iter().map(|f| f.as_ref()).collect();
    let policy = Policy {
        allow_ephemeral_listen: true,
    };
    match validate(&routes, &faults, policy).into_iter().next() {
        None => Ok(()),
        Some(finding) => {
            let (name, field) = match finding.subject {
                Subject::Route(i) => (&routes[i].name, finding.field.map(str::to_string)),
                Subject::Fault(i) => (
                    &faults[i].name,
                    finding.field.map(|f| request_field(faults[i], f)),
                ),
            };
            Err(ChangeError::Invalid {
                field,
                message: format!("{name}: {}", finding.message),
            })
        }
    }
}

/// The field of the `/v1/faults` JSON a finding blames. Validation names a kind's parameter
/// as a rules file writes it (`ms`); in the JSON it sits at `kind.Latency.ms`, where serde's
/// own errors put it too, so a form can mark the input that holds it.
fn request_field(fault: &Fault, field: &str) -> String {
    const FAULT_FIELDS: [&str; 9] = [
        "name",
        "route",
        "enabled",
        "probability",
        "direction",
        "kind",
        "when",
        "max_active",
        "ttl",
    ];
    if FAULT_FIELDS.contains(&field) {
        field.to_string()
    } else {
        format!("kind.{}.{field}", fault.kind.name())
    }
}
