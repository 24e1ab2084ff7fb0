"""An API-key plugin written in Python and built with componentize-py: proof that components
from other toolchains load and run in host unchanged.

    componentize-py -d ../../wit -w plugin componentize app -o api_key_py.wasm
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http, log, types


class AuthFlow(exports.AuthFlow):
    def metadata(self) -> types.PluginMetadata:
        schema = {
            "type": "object",
            "required": ["verify_url"],
            "properties": {"verify_url": {"type": "string", "format": "uri"}},
        }
        return types.PluginMetadata(
            display_name="API key (Python)",
            version="0.1.0",
            allowed_hosts=["127.0.0.1"],
            app_credentials_schema=json.dumps(schema),
        )

    def authorize(self, app: str, req: types.AuthorizeRequest) -> types.Authorization:
        field = types.PromptField(name="api_key", label="API key", secret=True)
        return types.Authorization(interaction=types.Interaction_Prompt([field]), pending=b"")

    def exchange(self, app: str, pending: bytes, input) -> types.Credential:
        settings = json.loads(app)
        key = dict(input).get("api_key", "")
        if not key:
            raise Err(types.FlowError_InvalidInput("no API key given"))
        request = http.Request(
            method=http.Method.GET,
            url=settings["verify_url"],
            headers=[("authorization", "Bearer " + key)],
            body=b"",
        )
        try:
            response = http.send(request)
        except Err as e:
            raise Err(types.FlowError_Network(repr(e.value)))
        if response.status != 200:
            log.log(log.Level.WARN, "the API key was rejected")
            raise Err(types.FlowError_InvalidInput("the API key was rejected (HTTP %d)" % response.status))
        return types.Credential_ApiKey(key)

    def refresh(self, app: str, credential: types.Credential) -> types.Credential:
        raise Err(types.FlowError_Unsupported("API keys do not refresh"))

    def revoke(self, app: str, credential: types.Credential) -> bool:
        return False
