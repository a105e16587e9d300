"""The official Tencent Cloud Python SDK (unchanged) against the sandbox.

Usage: sdk_check.py PORT SECRET_ID SECRET_KEY
Exits 0 when every check passes; otherwise prints the failed check and exits 1.
The sandbox must serve the bundled example fleet.
"""
import json
import sys
import time
import urllib.request

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.gaap.v20180529 import gaap_client, models

PORT, SECRET_ID, SECRET_KEY = sys.argv[1], sys.argv[2], sys.argv[3]
ENDPOINT = "127.0.0.1:" + PORT


def client(secret_id=SECRET_ID, secret_key=SECRET_KEY):
    http = HttpProfile(protocol="http", endpoint=ENDPOINT, reqTimeout=10)
    return gaap_client.GaapClient(credential.Credential(secret_id, secret_key), "", ClientProfile(httpProfile=http))


def request(model, params):
    req = model()
    req.from_json_string(json.dumps(params))
    return req


def check(cond, what):
    if not cond:
        print("FAILED: " + what, file=sys.stderr)
        sys.exit(1)
    print("ok: " + what)


def expect_error(fn, code, what):
    try:
        fn()
    except TencentCloudSDKException as e:
        check(e.code == code, "%s -> %s (got %s: %s)" % (what, code, e.code, e.message))
        check(bool(e.requestId), what + " carries a RequestId")
        return
    check(False, what + " -> " + code + " (the call succeeded)")


c = client()

# DescribeProxies by id, and by tag
r = c.DescribeProxies(request(models.DescribeProxiesRequest, {"ProxyIds": ["link-kicu7m5b"]}))
check(r.TotalCount == 1 and len(r.ProxySet) == 1, "DescribeProxies by id")
p = r.ProxySet[0]
check(p.ProxyId == "link-kicu7m5b" and p.Status == "RUNNING" and p.Scalarable == 1, "ProxyInfo fields")
check(p.AccessRegionInfo.RegionId == "Guangzhou" and p.Bandwidth == 50 and p.Concurrent == 2, "nested RegionDetail")
check(len(r.RequestId) == 36, "RequestId is uuid-shaped")
r = c.DescribeProxies(request(models.DescribeProxiesRequest,
                              {"TagSet": [{"TagKey": "autoscale", "TagValue": "web"}], "Limit": 100}))
check(r.TotalCount >= 3 and all(any(t.TagKey == "autoscale" and t.TagValue == "web" for t in x.TagSet) for x in r.ProxySet),
      "DescribeProxies by tag")

# DescribeProxiesStatus, DescribeProxyDetail, DescribeAccessRegionsByDestRegion
r = c.DescribeProxiesStatus(request(models.DescribeProxiesStatusRequest, {"ProxyIds": ["link-kicu7m5b"]}))
check(r.InstanceStatusSet[0].InstanceId == "link-kicu7m5b" and r.InstanceStatusSet[0].Status == "RUNNING",
      "DescribeProxiesStatus")
r = c.DescribeProxyDetail(request(models.DescribeProxyDetailRequest, {"ProxyId": "link-3n9x1q7d"}))
check(r.ProxyDetail.ProxyId == "link-3n9x1q7d" and r.ProxyDetail.Bandwidth == 100, "DescribeProxyDetail")
r = c.DescribeAccessRegionsByDestRegion(request(models.DescribeAccessRegionsByDestRegionRequest, {"DestRegion": "Shanghai"}))
gz = [a for a in r.AccessRegionSet if a.RegionId == "Guangzhou"]
check(len(gz) == 1 and 1000 in gz[0].BandwidthList and 30 in gz[0].ConcurrentList, "DescribeAccessRegionsByDestRegion")

# ModifyProxyConfiguration, then the same ClientToken again
modify = {"ProxyId": "link-kicu7m5b", "Bandwidth": 100, "Concurrent": 5, "ClientToken": "sdk-check-0001", "BillingType": 0}
r = c.ModifyProxyConfiguration(request(models.ModifyProxyConfigurationRequest, modify))
check(len(r.RequestId) == 36, "ModifyProxyConfiguration accepted")
r = c.DescribeProxiesStatus(request(models.DescribeProxiesStatusRequest, {"ProxyIds": ["link-kicu7m5b"]}))
check(r.InstanceStatusSet[0].Status == "ADJUSTING", "ADJUSTING after a change")
expect_error(lambda: c.ModifyProxyConfiguration(request(models.ModifyProxyConfigurationRequest, modify)),
             "FailedOperation.DuplicatedRequest", "reused ClientToken")

# Rejections
expect_error(lambda: c.ModifyProxyConfiguration(request(models.ModifyProxyConfigurationRequest,
                                                        {"ProxyId": "link-3n9x1q7d", "Bandwidth": 30})),
             "InvalidParameterValue", "bandwidth outside the region's list")
expect_error(lambda: c.ModifyProxyConfiguration(request(models.ModifyProxyConfigurationRequest,
                                                        {"ProxyId": "link-legacy01", "Bandwidth": 300})),
             "FailedOperation.NotSupportScalar", "Scalarable 0")
expect_error(lambda: c.DescribeProxyDetail(request(models.DescribeProxyDetailRequest, {"ProxyId": "link-nothere"})),
             "ResourceNotFound", "unknown proxy")
expect_error(lambda: client(secret_key=SECRET_KEY + "x").DescribeProxies(request(models.DescribeProxiesRequest, {})),
             "AuthFailure.SignatureFailure", "bad key")
expect_error(lambda: client(secret_id="AKIDnobody").DescribeProxies(request(models.DescribeProxiesRequest, {})),
             "AuthFailure.SecretIdNotFound", "unknown SecretId")

# A burst of 25 modify calls inside one second: the sandbox allows 20. The sandbox runs
# on a manual clock (--manual-clock): move it past the calls above, then all 25 arrive in
# the same millisecond, whatever this machine's load.
def advance(duration):
    req = urllib.request.Request("http://%s/__sandbox/clock" % ENDPOINT, data=duration.encode(), method="POST")
    return int(urllib.request.urlopen(req, timeout=10).read())

before = int(urllib.request.urlopen("http://%s/__sandbox/clock" % ENDPOINT, timeout=10).read())
check(advance("1100ms") == before + 1100, "the sandbox clock moves by hand")
codes = []
for i in range(25):
    try:
        c.ModifyProxyConfiguration(request(models.ModifyProxyConfigurationRequest,
                                           {"ProxyId": "link-fr5t0w2e", "Bandwidth": 50 if i % 2 else 100,
                                            "ClientToken": "sdk-burst-%d" % i}))
        codes.append("ok")
    except TencentCloudSDKException as e:
        codes.append(e.code)
limited = codes.count("RequestLimitExceeded")
check(codes[20:] == ["RequestLimitExceeded"] * 5 and "RequestLimitExceeded" not in codes[:20],
      "exactly the last 5 of 25 calls in one millisecond limited (%s)" % codes)
check(codes.count("ok") == 1, "one burst change applied, the rest found the proxy ADJUSTING")

# The sandbox recorded every call; the reused token changed nothing.
calls = json.load(urllib.request.urlopen("http://%s/__sandbox/calls" % ENDPOINT, timeout=10))
mine = [x for x in calls if x["action"] == "ModifyProxyConfiguration" and x["params"].get("ClientToken") == "sdk-check-0001"]
check(len(mine) == 2 and sum(1 for x in mine if x["applied"]) == 1, "call record: one applied change for the reused token")
print(json.dumps({"calls": len(calls), "burst_limited": limited}))
