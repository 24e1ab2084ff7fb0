// An API-key plugin written in JavaScript and built with componentize-js: proof that
// components from a JavaScript engine (StarlingMonkey) load and run in host unchanged, as the
// Python one does. The test kit builds it (`host_testkit::javascript::componentize`).
import { send } from 'integrations:auth/http@0.2.0';
import { log } from 'integrations:auth/log@0.2.0';

export const authFlow = {
  metadata() {
    const schema = {
      type: 'object',
      required: ['verify_url'],
      properties: { verify_url: { type: 'string', format: 'uri' } },
    };
    return {
      displayName: 'API key (JavaScript)',
      version: '0.1.0',
      allowedHosts: ['127.0.0.1'],
      appCredentialsSchema: JSON.stringify(schema),
      binding: undefined,
      apiBaseUrl: undefined,
    };
  },
  authorize(app, req) {
    return {
      interaction: { tag: 'prompt', val: [{ name: 'api_key', label: 'API key', secret: true }] },
      pending: new Uint8Array(),
    };
  },
  exchange(app, pending, input) {
    const settings = JSON.parse(app);
    const key = (input.find(([k]) => k === 'api_key') || [])[1] || '';
    if (!key) throw { tag: 'invalid-input', val: 'no API key given' };
    let response;
    try {
      response = send({
        method: 'get',
        url: settings.verify_url,
        headers: [['authorization', 'Bearer ' + key]],
        body: new Uint8Array(),
      });
    } catch (e) {
      throw { tag: 'network', val: String(e && e.payload ? JSON.stringify(e.payload) : e) };
    }
    if (response.status !== 200) {
      log('warn', 'the API key was rejected');
      throw { tag: 'invalid-input', val: `the API key was rejected (HTTP ${response.status})` };
    }
    return { tag: 'api-key', val: key };
  },
  refresh(app, credential) {
    throw { tag: 'unsupported', val: 'API keys do not refresh' };
  },
  revoke(app, credential) {
    return false;
  },
};
