//! Serde types for the five GAAP actions the engine uses. Field names are Tencent's
//! (PascalCase). Enumerations that Tencent documents but also extends in practice
//! (`Status` `CREATE_FAILED`, `BillingType` 2) are kept as plain strings/integers, so an
//! unknown value never breaks parsing; unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::{ProxyState, ProxyStatus};

/// A tag on a proxy, and a tag filter (`TagSet` has OR semantics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagPair {
    pub tag_key: String,
    pub tag_value: String,
}

/// A `Filters.N` entry of DescribeProxies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// DescribeProxies request (one page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeProxiesRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_set: Option<Vec<TagPair>>,
}

/// Region details embedded in ProxyInfo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RegionDetail {
    pub region_id: String,
    pub region_name: Option<String>,
    pub region_area: Option<String>,
    pub region_area_name: Option<String>,
    #[serde(rename = "IDCType")]
    pub idc_type: Option<String>,
    pub feature_bitmap: Option<i64>,
}

/// One proxy as DescribeProxies / DescribeProxyDetail return it (the fields the engine
/// reads; the rest are ignored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ProxyInfo {
    pub proxy_id: String,
    pub instance_id: Option<String>,
    pub proxy_name: Option<String>,
    pub access_region: String,
    pub real_server_region: String,
    pub access_region_info: Option<RegionDetail>,
    pub real_server_region_info: Option<RegionDetail>,
    pub bandwidth: u32,
    pub concurrent: u32,
    /// Documented values plus whatever else the API sends (e.g. `CREATE_FAILED`).
    pub status: String,
    pub scalarable: Option<i64>,
    /// 0 by bandwidth, 1 by traffic, anything else kept as is (the doc example shows 2).
    pub billing_type: Option<i64>,
    pub create_time: Option<i64>,
    pub project_id: Option<i64>,
    pub modify_config_time: Option<i64>,
    pub version: Option<String>,
    pub domain: Option<String>,
    #[serde(rename = "IP")]
    pub ip: Option<String>,
    pub support_protocols: Option<Vec<String>>,
    pub group_id: Option<String>,
    pub tag_set: Option<Vec<TagPair>>,
    pub network_type: Option<String>,
    pub package_type: Option<String>,
    #[serde(rename = "IPAddressVersion")]
    pub ip_address_version: Option<String>,
}

impl ProxyInfo {
    /// The id, from `ProxyId` or the old `InstanceId`.
    pub fn id(&self) -> &str {
        if self.proxy_id.is_empty() {
            self.instance_id.as_deref().unwrap_or("")
        } else {
            &self.proxy_id
        }
    }
    pub fn status(&self) -> ProxyStatus {
        ProxyStatus::parse(&self.status)
    }
    /// The engine's view of this proxy.
    pub fn to_state(&self) -> ProxyState {
        ProxyState {
            id: self.id().to_string(),
            name: self.proxy_name.clone(),
            access_region: self.access_region.clone(),
            real_server_region: self.real_server_region.clone(),
            bandwidth: self.bandwidth,
            concurrent: self.concurrent,
            status: self.status(),
            scalarable: self.scalarable.unwrap_or(0),
            billing_type: self.billing_type,
            tags: self
                .tag_set
                .iter()
                .flatten()
                .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeProxiesResponse {
    pub total_count: u64,
    pub proxy_set: Vec<ProxyInfo>,
    pub request_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeProxiesStatusRequest {
    pub proxy_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InstanceStatus {
    pub instance_id: String,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeProxiesStatusResponse {
    pub instance_status_set: Vec<InstanceStatus>,
    pub request_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeProxyDetailRequest {
    pub proxy_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeProxyDetailResponse {
    pub proxy_detail: ProxyInfo,
    pub request_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAccessRegionsByDestRegionRequest {
    pub dest_region: String,
    #[serde(rename = "IPAddressVersion", skip_serializing_if = "Option::is_none")]
    pub ip_address_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_type: Option<String>,
}

/// `AccessRegionDetial` (sic): one access region and its allowed values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccessRegionDetail {
    pub region_id: String,
    pub region_name: Option<String>,
    pub concurrent_list: Vec<u32>,
    pub bandwidth_list: Vec<u32>,
    pub region_area: Option<String>,
    pub region_area_name: Option<String>,
    #[serde(rename = "IDCType")]
    pub idc_type: Option<String>,
    pub feature_bitmap: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeAccessRegionsByDestRegionResponse {
    pub total_count: u64,
    pub access_region_set: Vec<AccessRegionDetail>,
    pub request_id: String,
}

/// ModifyProxyConfiguration parameters (what goes on the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyProxyConfigurationRequest {
    pub proxy_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_type: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ModifyProxyConfigurationResponse {
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_example_with_unknown_enum_values_parses() {
        let body = r#"{"TotalCount": 32, "RequestId": "c8bb6c5b-a425-4ace-a22c-c488d06811ba",
          "ProxySet": [{"ProxyId": "link-kicu7m5b", "InstanceId": "link-kicu7m5b", "ProxyName": "default",
            "AccessRegion": "Guangzhou", "RealServerRegion": "Shanghai", "Bandwidth": 10, "Concurrent": 2,
            "Status": "CREATE_FAILED", "Scalarable": 1, "BillingType": 2, "ProjectId": 0, "Version": "3.0",
            "SupportProtocols": ["TCP"], "GroupId": "lg-joaaddy1", "PolicyId": null, "ModifyConfigTime": null,
            "AccessRegionInfo": {"RegionId": "Guangzhou", "RegionName": "广州", "RegionArea": "SouthChina",
              "RegionAreaName": "SouthChina", "IDCType": "dc", "FeatureBitmap": 207, "SupportFeature": null},
            "IPAddressVersion": "IPv4", "NetworkType": "normal", "PackageType": "Thunder", "ProxyType": 100,
            "IsAutoScaleProxy": 0, "FeatureBitmap": 71, "IPList": [], "TagSet": [{"TagKey":"autoscale","TagValue":"web"}] }],
          "InstanceSet": []}"#;
        let r: DescribeProxiesResponse = serde_json::from_str(body).unwrap();
        let p = &r.proxy_set[0];
        assert_eq!(p.status(), ProxyStatus::Other("CREATE_FAILED".into()));
        assert_eq!(p.billing_type, Some(2));
        let s = p.to_state();
        assert_eq!((s.bandwidth, s.concurrent, s.scalarable), (10, 2, 1));
        assert_eq!(s.tags.get("autoscale").map(String::as_str), Some("web"));
    }

    #[test]
    fn modify_serializes_like_the_sdk() {
        let r = ModifyProxyConfigurationRequest {
            proxy_id: "link-4ftf12sb".into(),
            bandwidth: Some(20),
            concurrent: None,
            client_token: Some("t".into()),
            billing_type: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ProxyId":"link-4ftf12sb","Bandwidth":20,"ClientToken":"t"}"#
        );
    }
}
