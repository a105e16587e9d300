//! Fault injection for the sandbox: a small spec, from `--faults SPEC`, `--faults-file FILE`
//! or `POST /__sandbox/faults`.
//!
//! ```text
//! SPEC   := RULE (';' RULE)*                 whitespace and newlines ignored, '#' starts a comment
//! RULE   := ACTION ':' EFFECT ['@' WHEN]       ACTION is an action name or '*' (any)
//! EFFECT := CODE | 'delay=' DURATION | 'drop'
//! WHEN   := ITEM (',' ITEM)*                   ITEM is N or N-M (1-based call numbers)
//! ```
//! `@WHEN` counts the calls of that action the sandbox received (every call, whatever its
//! outcome); without it the rule applies to every call. `CODE` answers with that error code
//! (e.g. `InternalError`, `RequestLimitExceeded`) without touching any state; `delay=2s`
//! waits before handling; `drop` handles the call (a change is applied) and then drops the
//! connection instead of answering, like a response lost on the way back.
//!
//! Example: `ModifyProxyConfiguration:InternalError@1,3;DescribeProxies:delay=2s@2;ModifyProxyConfiguration:drop@5`

use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Error(String),
    Delay(Duration),
    Drop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `None` = any action.
    pub action: Option<String>,
    pub effect: Effect,
    /// Inclusive ranges of call numbers; empty = every call.
    pub when: Vec<(u64, u64)>,
}

impl Rule {
    pub fn matches(&self, action: &str, n: u64) -> bool {
        self.action.as_deref().is_none_or(|a| a == action)
            && (self.when.is_empty() || self.when.iter().any(|&(lo, hi)| lo <= n && n <= hi))
    }
}

/// A parsed fault plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub rules: Vec<Rule>,
}

/// What to do with the `n`-th call of an action.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injection {
    pub delay: Duration,
    pub error: Option<String>,
    pub drop: bool,
}

impl Injection {
    pub fn is_none(&self) -> bool {
        self.delay.is_zero() && self.error.is_none() && !self.drop
    }
    /// A short label for the call record.
    pub fn label(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!(
                "delay={}",
                crate::time::format_duration(self.delay)
            ));
        }
        if let Some(c) = &self.error {
            parts.push(c.clone());
        } else if self.drop {
            parts.push("drop".into());
        }
        (!parts.is_empty()).then(|| parts.join("+"))
    }
}

impl FaultPlan {
    /// Delays add up; the first matching error wins; `drop` applies when no error does.
    pub fn injection(&self, action: &str, n: u64) -> Injection {
        let mut inj = Injection::default();
        for r in self.rules.iter().filter(|r| r.matches(action, n)) {
            match &r.effect {
                Effect::Delay(d) => inj.delay += *d,
                Effect::Error(c) if inj.error.is_none() => inj.error = Some(c.clone()),
                Effect::Error(_) => {}
                Effect::Drop => inj.drop = true,
            }
        }
        inj
    }

    pub fn parse(spec: &str) -> Result<FaultPlan, String> {
        let mut rules = Vec::new();
        let cleaned: String = spec
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(";");
        for raw in cleaned.split(';') {
            let rule = raw.trim();
            if rule.is_empty() {
                continue;
            }
            rules.push(parse_rule(rule)?);
        }
        Ok(FaultPlan { rules })
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let (action, rest) = rule
        .split_once(':')
        .ok_or_else(|| format!("fault rule `{rule}`: expected ACTION:EFFECT[@N,...]"))?;
    let action = action.trim();
    if action.is_empty() || !(action == "*" || action.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Err(format!(
            "fault rule `{rule}`: `{action}` is not an action name or `*`"
        ));
    }
    let (effect, when) = match rest.split_once('@') {
        Some((e, w)) => (e.trim(), Some(w.trim())),
        None => (rest.trim(), None),
    };
    let effect = if effect == "drop" {
        Effect::Drop
    } else if let Some(d) = effect.strip_prefix("delay=") {
        Effect::Delay(
            crate::time::parse_duration(d).map_err(|e| format!("fault rule `{rule}`: {e}"))?,
        )
    } else if !effect.is_empty()
        && effect.starts_with(|c: char| c.is_ascii_uppercase())
        && effect
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        Effect::Error(effect.to_string())
    } else {
        return Err(format!(
            "fault rule `{rule}`: effect `{effect}` must be an error code (e.g. InternalError), delay=DURATION or drop"
        ));
    };
    let mut ranges = Vec::new();
    if let Some(w) = when {
        for item in w.split(',') {
            let item = item.trim();
            let num = |s: &str| {
                s.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        format!("fault rule `{rule}`: `{s}` is not a call number (1, 2, ...)")
                    })
            };
            let range = match item.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(item)?;
                    (n, n)
                }
            };
            if range.0 > range.1 {
                return Err(format!("fault rule `{rule}`: empty range `{item}`"));
            }
            ranges.push(range);
        }
    }
    Ok(Rule {
        action: (action != "*").then(|| action.to_string()),
        effect,
        when: ranges,
    })
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                let effect = match &r.effect {
                    Effect::Error(c) => c.clone(),
                    Effect::Delay(d) => format!("delay={}", crate::time::format_duration(*d)),
                    Effect::Drop => "drop".into(),
                };
                let when = if r.when.is_empty() {
                    String::new()
                } else {
                    let items: Vec<String> = r
                        .when
                        .iter()
                        .map(|&(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a}-{b}")
                            }
                        })
                        .collect();
                    format!("@{}", items.join(","))
                };
                format!("{}:{effect}{when}", r.action.as_deref().unwrap_or("*"))
            })
            .collect();
        f.write_str(&rules.join(";"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example() {
        let spec = "ModifyProxyConfiguration:InternalError@1,3;DescribeProxies:delay=2s@2;ModifyProxyConfiguration:drop@5";
        let p = FaultPlan::parse(spec).unwrap();
        assert_eq!(p.to_string(), spec);
        let m = "ModifyProxyConfiguration";
        let cases: &[(&str, u64, Option<&str>, u64, bool)] = &[
            (m, 1, Some("InternalError"), 0, false),
            (m, 2, None, 0, false),
            (m, 3, Some("InternalError"), 0, false),
            (m, 5, None, 0, true),
            ("DescribeProxies", 2, None, 2000, false),
            ("DescribeProxies", 1, None, 0, false),
            ("DescribeProxyDetail", 1, None, 0, false),
        ];
        for (action, n, err, delay_ms, drop) in cases {
            let inj = p.injection(action, *n);
            assert_eq!(inj.error.as_deref(), *err, "{action}#{n}");
            assert_eq!(inj.delay.as_millis() as u64, *delay_ms, "{action}#{n}");
            assert_eq!(inj.drop, *drop, "{action}#{n}");
        }
    }

    #[test]
    fn ranges_wildcards_comments() {
        let p = FaultPlan::parse(
            "# every call slow\n*:delay=100ms\nDescribeProxies:RequestLimitExceeded@2-4, 9\n",
        )
        .unwrap();
        assert_eq!(p.injection("X", 7).delay, Duration::from_millis(100));
        assert_eq!(
            p.injection("DescribeProxies", 3).error.as_deref(),
            Some("RequestLimitExceeded")
        );
        assert_eq!(
            p.injection("DescribeProxies", 9).error.as_deref(),
            Some("RequestLimitExceeded")
        );
        assert!(p.injection("DescribeProxies", 5).error.is_none());
        assert!(FaultPlan::parse("").unwrap().rules.is_empty());
    }

    #[test]
    fn bad_specs_are_explained() {
        for bad in [
            "Modify",
            "Modify:",
            "Modify:drop@0",
            "Modify:drop@3-1",
            "Modify:delay=5",
            "Mo dify:drop",
            "A:lowercase",
            "A:drop@x",
        ] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
