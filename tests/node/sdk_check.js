// The official Tencent Cloud Node.js SDK (tencentcloud-sdk-nodejs, unchanged, from npm)
// against the sandbox: the mirror of tests/python/sdk_check.py.
//
// Usage: node sdk_check.js PORT SECRET_ID SECRET_KEY
// Exits 0 when every check passes; otherwise prints the failed check and exits 1.
// The sandbox must serve the bundled example fleet. Installed by scripts/setup-node-sdk.sh.
"use strict";

const http = require("http");
const { Client } = require("tencentcloud-sdk-nodejs/tencentcloud/services/gaap/v20180529/gaap_client");

const [PORT, SECRET_ID, SECRET_KEY] = process.argv.slice(2);
if (!PORT || !SECRET_ID || !SECRET_KEY) {
  console.error("usage: node sdk_check.js PORT SECRET_ID SECRET_KEY");
  process.exit(2);
}
// The endpoint exactly as a user writes it for a local API: the SDK signs host 127.0.0.1
// (no port) with service "127" (the endpoint's first label); the sandbox accepts that rule.
const ENDPOINT = "127.0.0.1:" + PORT;

function client({ secretId = SECRET_ID, secretKey = SECRET_KEY, signMethod } = {}) {
  const profile = { httpProfile: { endpoint: ENDPOINT, protocol: "http://", reqTimeout: 10 } };
  if (signMethod) profile.signMethod = signMethod;
  return new Client({ credential: { secretId, secretKey }, region: "", profile });
}

function check(cond, what) {
  if (!cond) {
    console.error("FAILED: " + what);
    process.exit(1);
  }
  console.log("ok: " + what);
}

async function expectError(fn, code, what) {
  try {
    await fn();
  } catch (e) {
    check(e.code === code, `${what} -> ${code} (got ${e.code}: ${e.message})`);
    check(Boolean(e.requestId), what + " carries a RequestId");
    return;
  }
  check(false, `${what} -> ${code} (the call succeeded)`);
}

function getJson(path) {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${ENDPOINT}${path}`, { timeout: 10000 }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          try {
            resolve(JSON.parse(body));
          } catch (e) {
            reject(e);
          }
        });
      })
      .on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const c = client();

  // DescribeProxies by id, and by tag
  let r = await c.DescribeProxies({ ProxyIds: ["link-kicu7m5b"] });
  check(r.TotalCount === 1 && r.ProxySet.length === 1, "DescribeProxies by id");
  const p = r.ProxySet[0];
  check(p.ProxyId === "link-kicu7m5b" && p.Status === "RUNNING" && p.Scalarable === 1, "ProxyInfo fields");
  check(p.AccessRegionInfo.RegionId === "Guangzhou" && p.Bandwidth === 50 && p.Concurrent === 2, "nested RegionDetail");
  check(r.RequestId.length === 36, "RequestId is uuid-shaped");
  r = await c.DescribeProxies({ TagSet: [{ TagKey: "autoscale", TagValue: "web" }], Limit: 100 });
  check(
    r.TotalCount >= 3 &&
      r.ProxySet.every((x) => x.TagSet.some((t) => t.TagKey === "autoscale" && t.TagValue === "web")),
    "DescribeProxies by tag"
  );

  // DescribeProxiesStatus, DescribeProxyDetail, DescribeAccessRegionsByDestRegion
  r = await c.DescribeProxiesStatus({ ProxyIds: ["link-kicu7m5b"] });
  check(
    r.InstanceStatusSet[0].InstanceId === "link-kicu7m5b" && r.InstanceStatusSet[0].Status === "RUNNING",
    "DescribeProxiesStatus"
  );
  r = await c.DescribeProxyDetail({ ProxyId: "link-3n9x1q7d" });
  check(r.ProxyDetail.ProxyId === "link-3n9x1q7d" && r.ProxyDetail.Bandwidth === 100, "DescribeProxyDetail");
  r = await c.DescribeAccessRegionsByDestRegion({ DestRegion: "Shanghai" });
  const gz = r.AccessRegionSet.filter((a) => a.RegionId === "Guangzhou");
  check(
    gz.length === 1 && gz[0].BandwidthList.includes(1000) && gz[0].ConcurrentList.includes(30),
    "DescribeAccessRegionsByDestRegion"
  );

  // ModifyProxyConfiguration, then the same ClientToken again
  const modify = { ProxyId: "link-kicu7m5b", Bandwidth: 100, Concurrent: 5, ClientToken: "node-check-0001", BillingType: 0 };
  r = await c.ModifyProxyConfiguration(modify);
  check(r.RequestId.length === 36, "ModifyProxyConfiguration accepted");
  r = await c.DescribeProxiesStatus({ ProxyIds: ["link-kicu7m5b"] });
  check(r.InstanceStatusSet[0].Status === "ADJUSTING", "ADJUSTING after a change");
  await expectError(() => c.ModifyProxyConfiguration(modify), "FailedOperation.DuplicatedRequest", "reused ClientToken");

  // Rejections
  await expectError(
    () => c.ModifyProxyConfiguration({ ProxyId: "link-3n9x1q7d", Bandwidth: 30 }),
    "InvalidParameterValue",
    "bandwidth outside the region's list"
  );
  await expectError(
    () => c.ModifyProxyConfiguration({ ProxyId: "link-legacy01", Bandwidth: 300 }),
    "FailedOperation.NotSupportScalar",
    "Scalarable 0"
  );
  await expectError(() => c.DescribeProxyDetail({ ProxyId: "link-nothere" }), "ResourceNotFound", "unknown proxy");
  await expectError(
    () => c.DescribeAccessRegionsByDestRegion({ DestRegion: "Atlantis" }),
    "InvalidParameterValue.UnknownDestRegion",
    "unknown DestRegion"
  );
  await expectError(
    () => c.DescribeProxies({ ProxyIds: ["link-kicu7m5b"], InstanceIds: ["link-kicu7m5b"] }),
    "InvalidParameter.ConflictParameters",
    "ProxyIds with InstanceIds"
  );
  await expectError(
    () => client({ secretKey: SECRET_KEY + "x" }).DescribeProxies({}),
    "AuthFailure.SignatureFailure",
    "bad key"
  );
  await expectError(
    () => client({ secretId: "AKIDnobody" }).DescribeProxies({}),
    "AuthFailure.SecretIdNotFound",
    "unknown SecretId"
  );
  // Signature v1 (form parameters) is not served: a clear code, not MissingParameter.
  await expectError(
    () => client({ signMethod: "HmacSHA256" }).DescribeProxies({}),
    "UnsupportedOperation",
    "signature v1 (HmacSHA256)"
  );

  // A burst of 25 modify calls: the sandbox allows 20 in any second.
  await sleep(1100);
  const codes = [];
  for (let i = 0; i < 25; i++) {
    try {
      await c.ModifyProxyConfiguration({
        ProxyId: "link-fr5t0w2e",
        Bandwidth: i % 2 ? 50 : 100,
        ClientToken: "node-burst-" + i,
      });
      codes.push("ok");
    } catch (e) {
      codes.push(e.code);
    }
  }
  const limited = codes.filter((x) => x === "RequestLimitExceeded").length;
  check(limited >= 1, `burst of 25: ${limited} RequestLimitExceeded (${codes.join(",")})`);
  check(codes.filter((x) => x === "ok").length === 1, "one burst change applied, the rest found the proxy ADJUSTING");

  // The sandbox recorded every call: the reused token changed nothing, and by the recorded
  // arrival times no second held more than 20 granted burst calls.
  const calls = await getJson("/__sandbox/calls");
  const mine = calls.filter(
    (x) => x.action === "ModifyProxyConfiguration" && x.params && x.params.ClientToken === "node-check-0001"
  );
  check(mine.length === 2 && mine.filter((x) => x.applied).length === 1, "call record: one applied change for the reused token");
  const burst = calls.filter((x) => x.params && String(x.params.ClientToken || "").startsWith("node-burst-"));
  check(burst.length === 25, "call record: all 25 burst calls");
  const granted = burst.filter((x) => x.error_code !== "RequestLimitExceeded").map((x) => Date.parse(x.time));
  const worst = Math.max(...granted.map((t) => granted.filter((u) => u >= t && u < t + 1000).length));
  check(worst <= 20, `at most 20 granted in any second by arrival time (worst ${worst})`);
  console.log(JSON.stringify({ calls: calls.length, burst_limited: limited }));
}

main().catch((e) => {
  console.error("FAILED: unexpected error: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
