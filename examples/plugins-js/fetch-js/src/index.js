// fetch-js: a Tenantry plugin in JavaScript that calls an HTTPS API with fetch().
//
// Built against `tenantry:plugin@0.2.0` with componentize-js's HTTP support on:
// fetch() is the standard `wasi:http/outgoing-handler`, so the host checks every
// request against the install's egress grants and its address policy, verifies the
// certificate, and counts it as a host call. A refused request makes fetch()
// reject; the refusal is in the invocation's audit entry (`details.denied`).
import { get as configGet } from 'tenantry:plugin/config@0.2.0';

class PluginError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

export function describe() {
  return JSON.stringify([
    { name: 'get', description: 'GETs `url` with fetch(); returns status and body text' },
  ]);
}

export async function invoke(action, input) {
  if (action !== 'get') {
    throw new PluginError('not-found', `no action named ${action}`);
  }
  const { url } = JSON.parse(input);
  if (typeof url !== 'string') {
    throw new PluginError('invalid-input', '`url` is required');
  }
  const headers = { 'user-agent': JSON.parse(configGet()).user_agent ?? 'tenantry-fetch-js' };
  let res;
  try {
    res = await fetch(url, { headers });
  } catch (e) {
    throw new PluginError('failed', `GET ${url}: ${e.message}`);
  }
  return JSON.stringify({ status: res.status, body: await res.text() });
}
