//! The sandbox's GAAP model: proxies, ladders, used ClientTokens. Pure: every call takes
//! `now` (Unix ms). `ADJUSTING` is not a stored status but computed from the time of the
//! last change, so it ends on its own without a timer.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::core::ProxyState;
use crate::fleet::Fleet;

/// An API error answer: code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: String,
    pub message: String,
}

pub fn reject(code: &str, message: impl Into<String>) -> Rejection {
    Rejection {
        code: code.to_string(),
        message: message.into(),
    }
}

/// The actions the sandbox serves.
pub const ACTIONS: [&str; 5] = [
    "DescribeProxies",
    "DescribeProxiesStatus",
    "DescribeProxyDetail",
    "DescribeAccessRegionsByDestRegion",
    "ModifyProxyConfiguration",
];

#[derive(Clone, Debug)]
struct Proxy {
    state: ProxyState,
    create_time: i64,
    modify_config_time: Option<i64>,
    adjusting_until_ms: Option<i64>,
}

/// What a handled call did.
#[derive(Clone, Debug, PartialEq)]
pub struct Handled {
    pub response: Map<String, Value>,
    /// A ModifyProxyConfiguration that changed a proxy.
    pub applied: bool,
}

#[derive(Clone, Debug)]
pub struct Model {
    fleet: Fleet,
    proxies: Vec<Proxy>,
    tokens: HashSet<String>,
    adjusting: Duration,
}

impl Model {
    pub fn new(fleet: Fleet, adjusting: Duration, now_ms: i64) -> Model {
        let proxies = fleet
            .proxies
            .iter()
            .enumerate()
            .map(|(i, p)| Proxy {
                state: p.clone(),
                create_time: now_ms / 1000 - 86_400 - i as i64,
                modify_config_time: None,
                adjusting_until_ms: None,
            })
            .collect();
        Model {
            fleet,
            proxies,
            tokens: HashSet::new(),
            adjusting,
        }
    }

    pub fn handle(
        &mut self,
        action: &str,
        params: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Handled, Rejection> {
        let read = |response| {
            Ok(Handled {
                response,
                applied: false,
            })
        };
        match action {
            "DescribeProxies" => read(self.describe_proxies(params, now_ms)?),
            "DescribeProxiesStatus" => read(self.describe_proxies_status(params, now_ms)?),
            "DescribeProxyDetail" => read(self.describe_proxy_detail(params, now_ms)?),
            "DescribeAccessRegionsByDestRegion" => read(self.describe_access_regions(params)?),
            "ModifyProxyConfiguration" => {
                let response = self.modify(params, now_ms)?;
                Ok(Handled {
                    response,
                    applied: true,
                })
            }
            other => Err(reject(
                "InvalidAction",
                format!("The action `{other}` does not exist."),
            )),
        }
    }

    fn status(&self, p: &Proxy, now_ms: i64) -> String {
        match p.adjusting_until_ms {
            Some(until) if now_ms < until => "ADJUSTING".to_string(),
            _ => p.state.status.as_str().to_string(),
        }
    }

    fn find(&self, id: &str) -> Result<usize, Rejection> {
        self.proxies
            .iter()
            .position(|p| p.state.id == id)
            .ok_or_else(|| {
                reject(
                    "ResourceNotFound",
                    format!("The proxy `{id}` does not exist."),
                )
            })
    }

    fn proxy_json(&self, p: &Proxy, now_ms: i64) -> Value {
        let s = &p.state;
        let region = |id: &str| {
            json!({"RegionId": id, "RegionName": id, "RegionArea": id, "RegionAreaName": id,
                   "IDCType": "dc", "FeatureBitmap": 0, "SupportFeature": null})
        };
        let tags: Vec<Value> = s
            .tags
            .iter()
            .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
            .collect();
        json!({
            "ProxyId": s.id, "InstanceId": s.id, "ProxyName": s.name.clone().unwrap_or_else(|| s.id.clone()),
            "CreateTime": p.create_time, "ProjectId": 0,
            "AccessRegion": s.access_region, "RealServerRegion": s.real_server_region,
            "AccessRegionInfo": region(&s.access_region), "RealServerRegionInfo": region(&s.real_server_region),
            "Bandwidth": s.bandwidth, "Concurrent": s.concurrent, "Status": self.status(p, now_ms),
            "Domain": format!("{}.gaapqcloud.com", s.id), "IP": "", "Version": "3.0",
            "Scalarable": s.scalarable, "SupportProtocols": ["TCP", "UDP"], "GroupId": null, "PolicyId": null,
            "TagSet": tags, "SupportSecurity": 1, "BillingType": s.billing_type.unwrap_or(0),
            "RelatedGlobalDomains": [], "ModifyConfigTime": p.modify_config_time, "ProxyType": 0,
            "ClientIPMethod": [0], "IPAddressVersion": "IPv4", "NetworkType": "normal", "PackageType": "Thunder",
            "BanStatus": "RECOVER", "IPList": [], "Http3Supported": 0, "InBanBlacklist": 0,
            "FeatureBitmap": 0, "IsAutoScaleProxy": 0, "IsSupportTLSChoice": 0,
        })
    }

    fn describe_proxies(
        &self,
        params: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Map<String, Value>, Rejection> {
        allow_only(
            params,
            &[
                "ProxyIds",
                "InstanceIds",
                "Offset",
                "Limit",
                "Filters",
                "TagSet",
                "Independent",
                "Order",
                "OrderField",
                "ProjectId",
            ],
        )?;
        let ids = new_or_old(params, "ProxyIds", "InstanceIds", opt_str_list)?;
        if ids.as_ref().is_some_and(|i| i.len() > 100) {
            return Err(reject(
                "InvalidParameterValue",
                "ProxyIds: at most 100 ids per request.",
            ));
        }
        let filters = parse_filters(params)?;
        if ids.is_some() && !filters.is_empty() {
            return Err(reject(
                "InvalidParameter.ConflictParameters",
                "ProxyIds and Filters cannot be used together.",
            ));
        }
        let tags = parse_tags(params)?;
        let offset = opt_u64(params, "Offset")?.unwrap_or(0);
        let limit = opt_u64(params, "Limit")?.unwrap_or(20);
        if limit > 100 {
            return Err(reject("InvalidParameterValue", "Limit: at most 100."));
        }
        let matching: Vec<&Proxy> = self
            .proxies
            .iter()
            .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.state.id)))
            .filter(|p| {
                filters.iter().all(|(name, values)| {
                    let v = match name.as_str() {
                        "AccessRegion" => p.state.access_region.clone(),
                        "RealServerRegion" => p.state.real_server_region.clone(),
                        "ProjectId" => "0".into(),
                        "IPAddressVersion" => "IPv4".into(),
                        "PackageType" => "Thunder".into(),
                        _ => String::new(), // GroupId: no proxy is in a group here
                    };
                    values.contains(&v)
                })
            })
            .filter(|p| tags.is_empty() || tags.iter().any(|(k, v)| p.state.tags.get(k) == Some(v)))
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|p| self.proxy_json(p, now_ms))
            .collect();
        let mut out = Map::new();
        out.insert("TotalCount".into(), json!(matching.len()));
        out.insert("ProxySet".into(), Value::Array(page.clone()));
        out.insert("InstanceSet".into(), Value::Array(page));
        Ok(out)
    }

    fn describe_proxies_status(
        &self,
        params: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Map<String, Value>, Rejection> {
        allow_only(params, &["ProxyIds", "InstanceIds"])?;
        let ids = new_or_old(params, "ProxyIds", "InstanceIds", opt_str_list)?
            .filter(|i| !i.is_empty())
            .ok_or_else(|| reject("MissingParameter", "ProxyIds is required."))?;
        let mut set = Vec::new();
        for id in &ids {
            let p = &self.proxies[self.find(id)?];
            set.push(json!({"InstanceId": id, "Status": self.status(p, now_ms)}));
        }
        let mut out = Map::new();
        out.insert("InstanceStatusSet".into(), Value::Array(set));
        Ok(out)
    }

    fn describe_proxy_detail(
        &self,
        params: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Map<String, Value>, Rejection> {
        allow_only(params, &["ProxyId"])?;
        let id = opt_str(params, "ProxyId")?
            .ok_or_else(|| reject("MissingParameter", "ProxyId is required."))?;
        let p = &self.proxies[self.find(&id)?];
        let mut out = Map::new();
        out.insert("ProxyDetail".into(), self.proxy_json(p, now_ms));
        Ok(out)
    }

    fn describe_access_regions(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Rejection> {
        allow_only(params, &["DestRegion", "IPAddressVersion", "PackageType"])?;
        let dest = opt_str(params, "DestRegion")?
            .filter(|d| !d.is_empty())
            .ok_or_else(|| reject("MissingParameter", "DestRegion is required."))?;
        let known = self
            .fleet
            .ladders
            .iter()
            .filter_map(|l| l.dest_region.as_deref())
            .chain(
                self.proxies
                    .iter()
                    .map(|p| p.state.real_server_region.as_str()),
            )
            .any(|d| d == dest);
        if !known {
            return Err(reject(
                "InvalidParameterValue.UnknownDestRegion",
                format!(
                    "DestRegion `{dest}` is not a known destination region (the fleet names the regions: a ladder's dest_region or a proxy's real_server_region)."
                ),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut set = Vec::new();
        for entry in &self.fleet.ladders {
            let region = entry.access_region.as_str();
            if seen.contains(&region) {
                continue;
            }
            if let Some(l) = self.fleet.ladder_for(region, &dest) {
                seen.push(region);
                set.push(json!({
                    "RegionId": region, "RegionName": region, "ConcurrentList": l.concurrent,
                    "BandwidthList": l.bandwidth, "RegionArea": region, "RegionAreaName": region,
                    "IDCType": "dc", "FeatureBitmap": 0,
                }));
            }
        }
        let mut out = Map::new();
        out.insert("TotalCount".into(), json!(set.len()));
        out.insert("AccessRegionSet".into(), Value::Array(set));
        Ok(out)
    }

    fn modify(
        &mut self,
        params: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Map<String, Value>, Rejection> {
        allow_only(
            params,
            &[
                "ProxyId",
                "InstanceId",
                "Bandwidth",
                "Concurrent",
                "ClientToken",
                "BillingType",
            ],
        )?;
        let id = new_or_old(params, "ProxyId", "InstanceId", opt_str)?
            .ok_or_else(|| reject("MissingParameter", "ProxyId is required."))?;
        let bandwidth = opt_u64(params, "Bandwidth")?;
        let concurrent = opt_u64(params, "Concurrent")?;
        if bandwidth.is_none() && concurrent.is_none() {
            return Err(reject(
                "MissingParameter",
                "At least one of Bandwidth and Concurrent must be set.",
            ));
        }
        let token = opt_str(params, "ClientToken")?;
        if let Some(t) = &token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(reject(
                    "InvalidParameterValue",
                    "ClientToken: at most 64 ASCII characters.",
                ));
            }
            if self.tokens.contains(t) {
                return Err(reject(
                    "FailedOperation.DuplicatedRequest",
                    "Duplicate request, please check the value of ClientToken.",
                ));
            }
        }
        let billing = opt_i64(params, "BillingType")?;
        if billing.is_some_and(|b| b != 0 && b != 1) {
            return Err(reject(
                "InvalidParameterValue",
                "BillingType: 0 (by bandwidth) or 1 (by traffic).",
            ));
        }
        let idx = self.find(&id)?;
        let p = &self.proxies[idx];
        if p.state.scalarable != 1 {
            return Err(reject(
                "FailedOperation.NotSupportScalar",
                format!("The proxy `{id}` does not support configuration changes."),
            ));
        }
        let status = self.status(p, now_ms);
        if status != "RUNNING" {
            return Err(reject(
                "FailedOperation.ProxyStatusNotInRuning",
                format!("The proxy `{id}` is {status}, not RUNNING."),
            ));
        }
        let ladder = self
            .fleet
            .ladder_for(&p.state.access_region, &p.state.real_server_region)
            .ok_or_else(|| {
                reject(
                    "InvalidParameterValue",
                    "No allowed values for this proxy's regions.",
                )
            })?;
        if let Some(b) = bandwidth.filter(|b| !ladder.bandwidth.iter().any(|v| u64::from(*v) == *b))
        {
            return Err(reject(
                "InvalidParameterValue",
                format!(
                    "Bandwidth {b} is not one of the allowed values {:?}.",
                    ladder.bandwidth
                ),
            ));
        }
        if let Some(c) =
            concurrent.filter(|c| !ladder.concurrent.iter().any(|v| u64::from(*v) == *c))
        {
            return Err(reject(
                "InvalidParameterValue",
                format!(
                    "Concurrent {c} is not one of the allowed values {:?}.",
                    ladder.concurrent
                ),
            ));
        }
        let adjusting = self.adjusting.as_millis() as i64;
        let p = &mut self.proxies[idx];
        if let Some(b) = bandwidth {
            p.state.bandwidth = b as u32;
        }
        if let Some(c) = concurrent {
            p.state.concurrent = c as u32;
        }
        if let Some(b) = billing {
            p.state.billing_type = Some(b);
        }
        p.modify_config_time = Some(now_ms / 1000);
        p.adjusting_until_ms = Some(now_ms + adjusting);
        if let Some(t) = token {
            self.tokens.insert(t);
        }
        Ok(Map::new())
    }
}

/// Reads one parameter (`opt_str`, `opt_str_list`).
type Getter<T> = fn(&Map<String, Value>, &str) -> Result<Option<T>, Rejection>;

/// A parameter with a new and an old (deprecated) name: either, never both.
fn new_or_old<T>(
    params: &Map<String, Value>,
    new: &str,
    old: &str,
    get: Getter<T>,
) -> Result<Option<T>, Rejection> {
    match (get(params, new)?, get(params, old)?) {
        (Some(_), Some(_)) => Err(reject(
            "InvalidParameter.ConflictParameters",
            format!("{new} and {old} cannot be used together ({old} is the old name of {new})."),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

fn allow_only(params: &Map<String, Value>, allowed: &[&str]) -> Result<(), Rejection> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(reject(
            "UnknownParameter",
            format!("The parameter `{k}` is not recognized."),
        )),
        None => Ok(()),
    }
}

fn invalid(key: &str, what: &str) -> Rejection {
    reject(
        "InvalidParameter",
        format!("The parameter `{key}` must be {what}."),
    )
}

fn opt_str(params: &Map<String, Value>, key: &str) -> Result<Option<String>, Rejection> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(key, "a string")),
    }
}

fn opt_u64(params: &Map<String, Value>, key: &str) -> Result<Option<u64>, Rejection> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(key, "a non-negative integer")),
    }
}

fn opt_i64(params: &Map<String, Value>, key: &str) -> Result<Option<i64>, Rejection> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(key, "an integer")),
    }
}

fn opt_str_list(params: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, Rejection> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(key, "an array of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(key, "an array of strings")),
    }
}

fn parse_filters(params: &Map<String, Value>) -> Result<Vec<(String, Vec<String>)>, Rejection> {
    let Some(v) = params.get("Filters").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or_else(|| invalid("Filters", "an array"))?;
    let known = [
        "ProjectId",
        "AccessRegion",
        "RealServerRegion",
        "GroupId",
        "IPAddressVersion",
        "PackageType",
    ];
    let mut out = Vec::new();
    for f in arr {
        let obj = f
            .as_object()
            .ok_or_else(|| invalid("Filters", "an array of {Name, Values}"))?;
        let name = opt_str(obj, "Name")?.ok_or_else(|| invalid("Filters.Name", "a string"))?;
        if !known.contains(&name.as_str()) {
            return Err(reject(
                "InvalidParameterValue",
                format!("Unknown filter name `{name}`."),
            ));
        }
        let values = opt_str_list(obj, "Values")?.unwrap_or_default();
        out.push((name, values));
    }
    Ok(out)
}

fn parse_tags(params: &Map<String, Value>) -> Result<Vec<(String, String)>, Rejection> {
    let Some(v) = params.get("TagSet").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or_else(|| invalid("TagSet", "an array"))?;
    if arr.len() > 5 {
        return Err(reject("InvalidParameterValue", "TagSet: at most 5 tags."));
    }
    arr.iter()
        .map(|t| {
            let obj = t
                .as_object()
                .ok_or_else(|| invalid("TagSet", "an array of {TagKey, TagValue}"))?;
            Ok((
                opt_str(obj, "TagKey")?.unwrap_or_default(),
                opt_str(obj, "TagValue")?.unwrap_or_default(),
            ))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::{Ladder, ProxyStatus};
    use crate::fleet::LadderEntry;
    use std::collections::BTreeMap;

    /// A small fleet built in code (the fleet file parser lives elsewhere).
    pub(crate) fn fleet() -> Fleet {
        let proxy =
            |id: &str, access: &str, dest: &str, bw, cc, scalarable, tag: &str| ProxyState {
                id: id.into(),
                name: None,
                access_region: access.into(),
                real_server_region: dest.into(),
                bandwidth: bw,
                concurrent: cc,
                status: ProxyStatus::Running,
                scalarable,
                billing_type: None,
                tags: BTreeMap::from([("autoscale".to_string(), tag.to_string())]),
            };
        Fleet {
            ladders: vec![
                LadderEntry {
                    access_region: "Guangzhou".into(),
                    dest_region: Some("Shanghai".into()),
                    ladder: Ladder::new(vec![10, 20, 50, 100], vec![2, 5, 10]),
                },
                LadderEntry {
                    access_region: "Guangzhou".into(),
                    dest_region: None,
                    ladder: Ladder::new(vec![10, 20], vec![2]),
                },
                LadderEntry {
                    access_region: "HongKong".into(),
                    dest_region: None,
                    ladder: Ladder::new(vec![10, 30], vec![2, 5]),
                },
            ],
            proxies: vec![
                proxy("link-a", "Guangzhou", "Shanghai", 10, 2, 1, "web"),
                proxy("link-b", "Guangzhou", "Beijing", 20, 2, 1, "api"),
                proxy("link-fixed", "HongKong", "Shanghai", 10, 2, 0, "web"),
            ],
        }
    }

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn code(r: Result<Handled, Rejection>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => e.code,
        }
    }

    #[test]
    fn modify_rules_table() {
        let mut m = Model::new(fleet(), Duration::from_secs(10), 1_000_000);
        let t = 1_000_000;
        let cases: &[(Value, &str)] = &[
            (
                json!({"ProxyId": "link-a", "Bandwidth": 30}),
                "InvalidParameterValue",
            ),
            (
                json!({"ProxyId": "link-a", "Concurrent": 3}),
                "InvalidParameterValue",
            ),
            (
                json!({"ProxyId": "link-b", "Bandwidth": 50}),
                "InvalidParameterValue",
            ), // any-dest ladder
            (
                json!({"ProxyId": "link-zzz", "Bandwidth": 20}),
                "ResourceNotFound",
            ),
            (
                json!({"ProxyId": "link-fixed", "Bandwidth": 30}),
                "FailedOperation.NotSupportScalar",
            ),
            (json!({"ProxyId": "link-a"}), "MissingParameter"),
            (json!({"Bandwidth": 20}), "MissingParameter"),
            (
                json!({"ProxyId": "link-a", "Bandwidth": "20"}),
                "InvalidParameter",
            ),
            (
                json!({"ProxyId": "link-a", "Bandwidth": 20, "Foo": 1}),
                "UnknownParameter",
            ),
            (
                json!({"ProxyId": "link-a", "Bandwidth": 20, "BillingType": 2}),
                "InvalidParameterValue",
            ),
            (
                json!({"ProxyId": "link-a", "Bandwidth": 50, "ClientToken": "tok-1"}),
                "ok",
            ),
            (
                json!({"ProxyId": "link-a", "Bandwidth": 50, "ClientToken": "tok-1"}),
                "FailedOperation.DuplicatedRequest",
            ),
            (
                json!({"ProxyId": "link-a", "Bandwidth": 100, "ClientToken": "tok-2"}),
                "FailedOperation.ProxyStatusNotInRuning",
            ),
        ];
        for (i, (params, want)) in cases.iter().enumerate() {
            assert_eq!(
                code(m.handle("ModifyProxyConfiguration", &p(params.clone()), t)),
                *want,
                "case {i}: {params}"
            );
        }
    }

    #[test]
    fn adjusting_ends_lazily() {
        let mut m = Model::new(fleet(), Duration::from_millis(500), 0);
        m.handle(
            "ModifyProxyConfiguration",
            &p(json!({"ProxyId": "link-a", "Bandwidth": 20, "Concurrent": 5})),
            1000,
        )
        .unwrap();
        let status = |m: &mut Model, now| {
            let r = m
                .handle("DescribeProxyDetail", &p(json!({"ProxyId": "link-a"})), now)
                .unwrap();
            let d = &r.response["ProxyDetail"];
            (
                d["Status"].as_str().unwrap().to_string(),
                d["Bandwidth"].as_u64().unwrap(),
                d["Concurrent"].as_u64().unwrap(),
            )
        };
        assert_eq!(status(&mut m, 1499), ("ADJUSTING".into(), 20, 5));
        assert_eq!(status(&mut m, 1500), ("RUNNING".into(), 20, 5));
    }

    #[test]
    fn old_and_new_id_parameters_together_are_rejected() {
        let mut m = Model::new(fleet(), Duration::from_secs(1), 0);
        let cases: &[(&str, Value, &str)] = &[
            (
                "DescribeProxies",
                json!({"ProxyIds": ["link-a"], "InstanceIds": ["link-b"]}),
                "InvalidParameter.ConflictParameters",
            ),
            (
                "DescribeProxies",
                json!({"InstanceIds": ["link-a"], "Filters": [{"Name": "AccessRegion", "Values": ["HongKong"]}]}),
                "InvalidParameter.ConflictParameters",
            ),
            ("DescribeProxies", json!({"InstanceIds": ["link-a"]}), "ok"),
            (
                "DescribeProxiesStatus",
                json!({"ProxyIds": ["link-a"], "InstanceIds": ["link-a"]}),
                "InvalidParameter.ConflictParameters",
            ),
            (
                "DescribeProxiesStatus",
                json!({"InstanceIds": ["link-a"]}),
                "ok",
            ),
            (
                "ModifyProxyConfiguration",
                json!({"ProxyId": "link-a", "InstanceId": "link-a", "Bandwidth": 20}),
                "InvalidParameter.ConflictParameters",
            ),
        ];
        for (action, params, want) in cases {
            assert_eq!(
                code(m.handle(action, &p(params.clone()), 0)),
                *want,
                "{action} {params}"
            );
        }
    }

    #[test]
    fn unknown_dest_region_is_rejected_not_answered_with_a_default_ladder() {
        let mut m = Model::new(fleet(), Duration::from_secs(1), 0);
        // Known: a ladder's dest_region (Shanghai) or a proxy's real_server_region (Beijing).
        for (dest, want) in [
            ("Shanghai", "ok"),
            ("Beijing", "ok"),
            ("Atlantis", "InvalidParameterValue.UnknownDestRegion"),
            ("shanghai", "InvalidParameterValue.UnknownDestRegion"),
        ] {
            assert_eq!(
                code(m.handle(
                    "DescribeAccessRegionsByDestRegion",
                    &p(json!({ "DestRegion": dest })),
                    0
                )),
                want,
                "{dest}"
            );
        }
    }

    #[test]
    fn describe_filters_paging_tags_and_regions() {
        let mut m = Model::new(fleet(), Duration::from_secs(1), 0);
        let total = |m: &mut Model, v: Value| {
            let r = m.handle("DescribeProxies", &p(v), 0).unwrap().response;
            (
                r["TotalCount"].as_u64().unwrap(),
                r["ProxySet"].as_array().unwrap().len(),
            )
        };
        assert_eq!(total(&mut m, json!({})), (3, 3));
        assert_eq!(total(&mut m, json!({"Limit": 1, "Offset": 2})), (3, 1));
        assert_eq!(
            total(&mut m, json!({"ProxyIds": ["link-a", "nope"]})),
            (1, 1)
        );
        assert_eq!(
            total(
                &mut m,
                json!({"TagSet": [{"TagKey": "autoscale", "TagValue": "web"}]})
            ),
            (2, 2)
        );
        assert_eq!(
            total(
                &mut m,
                json!({"Filters": [{"Name": "AccessRegion", "Values": ["HongKong"]}]})
            ),
            (1, 1)
        );
        assert_eq!(
            code(m.handle("DescribeProxies", &p(json!({"Limit": 101})), 0)),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(m.handle(
                "DescribeProxiesStatus",
                &p(json!({"ProxyIds": ["nope"]})),
                0
            )),
            "ResourceNotFound"
        );
        let r = m
            .handle(
                "DescribeAccessRegionsByDestRegion",
                &p(json!({"DestRegion": "Shanghai"})),
                0,
            )
            .unwrap()
            .response;
        let set = r["AccessRegionSet"].as_array().unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0]["BandwidthList"], json!([10, 20, 50, 100]));
        let r = m
            .handle(
                "DescribeAccessRegionsByDestRegion",
                &p(json!({"DestRegion": "Beijing"})),
                0,
            )
            .unwrap()
            .response;
        assert_eq!(r["AccessRegionSet"][0]["BandwidthList"], json!([10, 20]));
        assert_eq!(
            code(m.handle("DescribeAccessRegionsByDestRegion", &p(json!({})), 0)),
            "MissingParameter"
        );
    }
}
