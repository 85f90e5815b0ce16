//! Prometheus metrics (SPEC 4): one [`Metrics`] value owns its registry and the handles.
//!
//! Labels are bounded by construction: actions, outcomes, reasons, response classes and
//! sweep kinds are enums here, so no label can ever hold a token, session, video, address or
//! path. This module counts; it never decides and never logs.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::policy::DenyReason;
use crate::token::Action;

/// The `action` label of `vidgate_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionLabel {
    /// A request for an [`Action`].
    Action(Action),
    /// `POST {prefix}/session`.
    Session,
    /// OPTIONS, `bad_*`, `no_route` and unchecked pass-through.
    None,
}

impl ActionLabel {
    const ALL: [ActionLabel; 6] = [
        ActionLabel::Action(Action::Read),
        ActionLabel::Action(Action::Create),
        ActionLabel::Action(Action::Update),
        ActionLabel::Action(Action::Destroy),
        ActionLabel::Session,
        ActionLabel::None,
    ];

    fn index(self) -> usize {
        match self {
            ActionLabel::Action(a) => a as usize,
            ActionLabel::Session => 4,
            ActionLabel::None => 5,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionLabel::Action(a) => a.as_str(),
            ActionLabel::Session => "session",
            ActionLabel::None => "none",
        }
    }
}

/// The `outcome` label of `vidgate_requests_total`: the decision's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The decision let the request through.
    Allowed,
    /// vidgate answered it with an error.
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
        }
    }
}

/// What came back from the origin, for `vidgate_upstream_responses_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamClass {
    /// A response with this status.
    Status(u16),
    /// No response (connect failure, timeout, broken connection).
    Error,
}

impl UpstreamClass {
    const LABELS: [&'static str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

    fn index(self) -> usize {
        match self {
            UpstreamClass::Status(s) if (200..600).contains(&s) => usize::from(s / 100 - 2),
            // 1xx and nonsense statuses are not expected as final answers: count them as errors.
            UpstreamClass::Status(_) | UpstreamClass::Error => 4,
        }
    }
}

/// The kinds of entries an expiry sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    /// Tokens past their retention.
    Token,
    /// Sessions past their retention.
    Session,
}

/// Every metric vidgate exports, registered in its own registry.
///
/// The labelled series vidgate counts on every request are resolved once, here: the hot path
/// increments an atomic instead of hashing label values.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `[action][outcome]`, in [`ActionLabel::index`] and [`Outcome`] order.
    requests: [[IntCounter; 2]; 6],
    /// In [`DenyReason::ALL`] order.
    denials: [IntCounter; DenyReason::ALL.len()],
    /// In [`UpstreamClass::index`] order.
    upstream_by_class: [IntCounter; 5],
    decision_seconds: Histogram,
    upstream_seconds: Histogram,
    tokens: IntGauge,
    sessions: IntGauge,
    sessions_created: IntCounter,
    sweep_removed: IntCounterVec,
    /// In [`Listener`] order.
    connections: [IntGauge; 2],
    /// In [`Listener`] order.
    connections_refused: [IntCounter; 2],
    /// `[applied, refused]`.
    reloads: [IntCounter; 2],
}

/// The `listener` label of the connection metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The proxy's listener (`proxy.listen`).
    Proxy,
    /// The admin API's listener (`admin.listen`).
    Admin,
}

impl Listener {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Proxy => "proxy",
            Listener::Admin => "admin",
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Latency buckets from 10 µs to 10 s: decisions take microseconds, origins up to seconds.
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// A fresh registry with every metric registered. Label values known in advance are
    /// initialised to zero, so that dashboards and alerts see them before the first event.
    pub fn new() -> Self {
        let registry = Registry::new();
        // The metric definitions are constants: failing here is a programming error caught by
        // every test run, not something input can cause.
        #[allow(clippy::expect_used)]
        let metrics = Self::register(registry).expect("metric definitions are valid");
        metrics
    }

    fn register(registry: Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "vidgate_requests_total",
                "Requests judged by vidgate, by action and outcome.",
            ),
            &["action", "outcome"],
        )?;
        let denials = IntCounterVec::new(
            Opts::new(
                "vidgate_denials_total",
                "Error responses made by vidgate itself, by reason.",
            ),
            &["reason"],
        )?;
        let decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vidgate_decision_seconds",
                "Time from request head to decision, store time included.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        let upstream_responses = IntCounterVec::new(
            Opts::new(
                "vidgate_upstream_responses_total",
                "Responses from the origin, by status class.",
            ),
            &["class"],
        )?;
        let upstream_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vidgate_upstream_seconds",
                "Time from forwarding a request to the origin's response head.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        let tokens = IntGauge::new("vidgate_tokens", "Tokens held in the store.")?;
        let sessions = IntGauge::new("vidgate_sessions", "Sessions held in the store.")?;
        let sessions_created =
            IntCounter::new("vidgate_sessions_created_total", "Sessions created.")?;
        let sweep_removed = IntCounterVec::new(
            Opts::new(
                "vidgate_sweep_removed_total",
                "Entries removed by expiry sweeps, by kind.",
            ),
            &["kind"],
        )?;
        let connections = prometheus::IntGaugeVec::new(
            Opts::new(
                "vidgate_connections",
                "Client connections open now, by listener.",
            ),
            &["listener"],
        )?;
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "vidgate_connections_refused_total",
                "Client connections refused because max_connections were open, by listener.",
            ),
            &["listener"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "vidgate_config_reloads_total",
                "Configuration reloads (SIGHUP), by outcome: applied, or refused and the running configuration kept.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(denials.clone()))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(upstream_responses.clone()))?;
        registry.register(Box::new(upstream_seconds.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(sessions_created.clone()))?;
        registry.register(Box::new(sweep_removed.clone()))?;
        // Resolving each series also creates it at zero, so alerts see it before any event.
        let requests = ActionLabel::ALL.map(|action| {
            [Outcome::Allowed, Outcome::Denied]
                .map(|outcome| requests.with_label_values(&[action.as_str(), outcome.as_str()]))
        });
        let denials = DenyReason::ALL.map(|reason| denials.with_label_values(&[reason.as_str()]));
        let upstream_by_class =
            UpstreamClass::LABELS.map(|class| upstream_responses.with_label_values(&[class]));
        for kind in ["token", "session"] {
            sweep_removed.with_label_values(&[kind]);
        }
        let listeners = [Listener::Proxy, Listener::Admin];
        let connections = listeners.map(|l| connections.with_label_values(&[l.as_str()]));
        let connections_refused =
            listeners.map(|l| connections_refused.with_label_values(&[l.as_str()]));
        let reloads = ["applied", "refused"].map(|outcome| reloads.with_label_values(&[outcome]));
        Ok(Metrics {
            registry,
            requests,
            denials,
            upstream_by_class,
            decision_seconds,
            upstream_seconds,
            tokens,
            sessions,
            sessions_created,
            sweep_removed,
            connections,
            connections_refused,
            reloads,
        })
    }

    /// A client connection opened (`open`) or closed on `listener`.
    pub fn connection(&self, listener: Listener, open: bool) {
        let gauge = &self.connections[listener as usize];
        if open {
            gauge.inc();
        } else {
            gauge.dec();
        }
    }

    /// Count a connection refused because `max_connections` were open.
    pub fn connection_refused(&self, listener: Listener) {
        self.connections_refused[listener as usize].inc();
    }

    /// Count a configuration reload, `applied` or refused.
    pub fn reload(&self, applied: bool) {
        self.reloads[usize::from(!applied)].inc();
    }

    /// Count a judged request.
    pub fn request(&self, action: ActionLabel, outcome: Outcome) {
        self.requests[action.index()][outcome as usize].inc();
    }

    /// Count an error response vidgate made.
    pub fn denial(&self, reason: DenyReason) {
        self.denials[reason as usize].inc();
    }

    /// Record how long a decision took.
    pub fn decision_time(&self, seconds: f64) {
        self.decision_seconds.observe(seconds);
    }

    /// Count an origin response (or failure) and how long its head took.
    pub fn upstream(&self, class: UpstreamClass, seconds: f64) {
        self.upstream_by_class[class.index()].inc();
        self.upstream_seconds.observe(seconds);
    }

    /// Count a created session.
    pub fn session_created(&self) {
        self.sessions_created.inc();
    }

    /// Set the store gauges.
    pub fn store_stats(&self, stats: &crate::store::StoreStats) {
        self.tokens
            .set(i64::try_from(stats.tokens).unwrap_or(i64::MAX));
        self.sessions
            .set(i64::try_from(stats.sessions).unwrap_or(i64::MAX));
    }

    /// Count what an expiry sweep removed.
    pub fn swept(&self, kind: SweepKind, removed: u64) {
        let label = match kind {
            SweepKind::Token => "token",
            SweepKind::Session => "session",
        };
        self.sweep_removed
            .with_label_values(&[label])
            .inc_by(removed);
    }

    /// The registry, to add process metrics or scrape it.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn counts_are_rendered_by_label() {
        let m = Metrics::new();
        m.request(ActionLabel::Action(Action::Read), Outcome::Allowed);
        m.request(ActionLabel::Action(Action::Read), Outcome::Allowed);
        m.request(ActionLabel::None, Outcome::Denied);
        m.denial(DenyReason::BadPath);
        m.upstream(UpstreamClass::Status(206), 0.01);
        m.upstream(UpstreamClass::Status(503), 0.01);
        m.upstream(UpstreamClass::Error, 0.01);
        m.session_created();
        let text = m.render();
        assert_eq!(
            value(
                &text,
                r#"vidgate_requests_total{action="read",outcome="allowed"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"vidgate_requests_total{action="none",outcome="denied"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_denials_total{reason="bad_path"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_denials_total{reason="no_route"}"#),
            Some(0.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_upstream_responses_total{class="2xx"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_upstream_responses_total{class="5xx"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_upstream_responses_total{class="error"}"#),
            Some(1.0)
        );
        assert_eq!(value(&text, "vidgate_upstream_seconds_count"), Some(3.0));
        assert_eq!(value(&text, "vidgate_sessions_created_total"), Some(1.0));
    }

    #[test]
    fn resolved_series_are_in_label_order() {
        for (i, reason) in DenyReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{reason}");
        }
        for (i, action) in ActionLabel::ALL.into_iter().enumerate() {
            assert_eq!(action.index(), i, "{}", action.as_str());
        }
        for (status, label) in [
            (200, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (599, "5xx"),
            (101, "error"),
        ] {
            assert_eq!(
                UpstreamClass::LABELS[UpstreamClass::Status(status).index()],
                label
            );
        }
        let m = Metrics::new();
        for reason in DenyReason::ALL {
            m.denial(reason);
            let series = format!(r#"vidgate_denials_total{{reason="{reason}"}}"#);
            assert_eq!(value(&m.render(), &series), Some(1.0), "{series}");
        }
    }

    #[test]
    fn store_stats_set_gauges_and_advance_sweep_counters() {
        let m = Metrics::new();
        let mut stats = crate::store::StoreStats {
            tokens: 3,
            sessions: 7,
        };
        m.store_stats(&stats);
        m.swept(SweepKind::Token, 2);
        m.swept(SweepKind::Session, 5);
        stats.tokens = 1;
        m.store_stats(&stats);
        m.swept(SweepKind::Session, 4);
        let text = m.render();
        assert_eq!(value(&text, "vidgate_tokens"), Some(1.0));
        assert_eq!(value(&text, "vidgate_sessions"), Some(7.0));
        assert_eq!(
            value(&text, r#"vidgate_sweep_removed_total{kind="token"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&text, r#"vidgate_sweep_removed_total{kind="session"}"#),
            Some(9.0)
        );
    }

    #[test]
    fn every_metric_of_the_spec_is_exported() {
        let text = Metrics::new().render();
        for name in [
            "vidgate_requests_total",
            "vidgate_denials_total",
            "vidgate_decision_seconds",
            "vidgate_upstream_responses_total",
            "vidgate_upstream_seconds",
            "vidgate_tokens",
            "vidgate_sessions",
            "vidgate_sessions_created_total",
            "vidgate_sweep_removed_total",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
