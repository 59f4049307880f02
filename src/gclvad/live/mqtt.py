"""The MQTT sink of `gclvad watch` (`--mqtt mqtt://HOST[:PORT]/PREFIX`, port 1883 by default).

Topics, named the way Home Assistant's MQTT integration expects (CAMERA: the camera's name
with every character but letters, digits, _ and - replaced by _):

    PREFIX/CAMERA/event    each alert opening and closing: the events.jsonl record plus
                           `camera` and `id` as JSON (QoS 1, not retained)
    PREFIX/CAMERA/state    "on" while the camera's alert is open, "off" once it closed (QoS 1,
                           retained: a client subscribing later learns the current state)
    PREFIX/availability    "online" while the watch is connected, "offline" when it stops or
                           (the broker's last will) when its connection drops (retained)
    homeassistant/binary_sensor/NODE_CAMERA/config   Home Assistant's discovery message
                           (retained; NODE: PREFIX with / as _): a binary_sensor per camera,
                           device_class "problem", with the event's fields as attributes.
                           Left out with `?discovery=off`; another discovery prefix with
                           `?discovery=PREFIX`.

A record is delivered once the broker acknowledged (PUBACK) both its event and its state
message; until then it is published again (after a reconnection), so a broker that drops
between PUBLISH and PUBACK may pass a record on twice, with the same id.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from pathlib import Path

import paho.mqtt.client as paho

from gclvad.errors import GclvadError
from gclvad.live.outbox import Sink

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
CONNECT_WAIT_S = 2.0  # how long start() waits for the broker before warning that it is not there
DISCOVERY_PREFIX = "homeassistant"


def topic_name(camera: str) -> str:
    """A camera name as one MQTT topic level (no /, + or #, which MQTT gives meanings)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", camera) or "_"


def mqtt_target(text: str) -> tuple[str, int, str, str | None]:
    """(host, port, topic prefix, discovery prefix or None) of an --mqtt URL."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "mqtt":
        raise GclvadError(f"--mqtt {text!r}: expected mqtt://HOST[:PORT]/PREFIX, not scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise GclvadError(f"--mqtt {text!r}: no broker host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as error:
        raise GclvadError(f"--mqtt {text!r}: bad port ({error})") from error
    prefix = parts.path.strip("/")
    # urlsplit takes a # for the start of a fragment: look for it in the whole text
    if not prefix or "+" in prefix or "#" in text or "//" in prefix:
        raise GclvadError(f"--mqtt {text!r}: expected a topic prefix without + or # or empty levels, e.g. /gclvad")
    options = urllib.parse.parse_qs(parts.query)
    unknown = sorted(set(options) - {"discovery"})
    if unknown:
        raise GclvadError(f"--mqtt {text!r}: unknown option {', '.join(unknown)} (known: discovery)")
    discovery = options.get("discovery", [DISCOVERY_PREFIX])[-1]
    return parts.hostname, port, prefix, None if discovery in ("off", "0", "false", "no") else discovery


class MqttSink(Sink):
    """Event, state and availability messages on a broker (see the module docstring)."""

    kind = "mqtt"

    def __init__(self, target: str, out_dir: Path, **settings):
        self.host, self.port, self.prefix, self.discovery = mqtt_target(target)
        super().__init__(target, out_dir, **settings)
        self.availability = f"{self.prefix}/availability"
        self.cameras: set[str] = set()  # topic names seen, announced again on every connection
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"gclvad-{self.name}")
        self.client.will_set(self.availability, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> MqttSink:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()  # paho's network thread: it reconnects by itself
        if not self._connected.wait(CONNECT_WAIT_S):
            log.warning(
                "MQTT broker %s:%d not reachable yet; events wait in %s until it is",
                self.host,
                self.port,
                self.outbox.folder,
            )
        return super().start()

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        log.info("MQTT broker %s:%d connected", self.host, self.port)
        client.publish(self.availability, "online", qos=1, retain=True)
        with self._lock:
            cameras = sorted(self.cameras)
        for camera in cameras:
            self._announce(camera)
        self._connected.set()
        self.delivery.wake()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self._connected.is_set():
            log.warning("MQTT broker %s:%d connection lost (%s); reconnecting", self.host, self.port, reason_code)
        self._connected.clear()

    def _announce(self, camera: str) -> None:
        """Home Assistant's discovery message for the camera's binary_sensor."""
        if self.discovery is None:
            return
        node = self.prefix.replace("/", "_")
        config = {
            "name": f"{camera} anomaly",
            "unique_id": f"{node}_{camera}",
            "object_id": f"{node}_{camera}",
            "device_class": "problem",
            "state_topic": f"{self.prefix}/{camera}/state",
            "payload_on": "on",
            "payload_off": "off",
            "availability_topic": self.availability,
            "json_attributes_topic": f"{self.prefix}/{camera}/event",
            "device": {"identifiers": [f"{node}_{camera}"], "name": f"gclvad {camera}", "manufacturer": "gclvad"},
        }
        topic = f"{self.discovery}/binary_sensor/{node}_{camera}/config"
        self.client.publish(topic, json.dumps(config), qos=1, retain=True)

    def camera_started(self, camera: str, info: dict) -> None:
        self._seen(topic_name(camera))

    def _seen(self, camera: str) -> None:
        with self._lock:
            new = camera not in self.cameras
            self.cameras.add(camera)
        if new and self._connected.is_set():
            self._announce(camera)

    def event(self, camera: str, record: dict) -> None:
        self._seen(topic_name(camera))
        super().event(camera, record)

    def send(self, message: dict) -> None:
        if not self._connected.is_set():
            # publishing now would only queue the message inside paho, unconfirmed
            raise ConnectionError(f"broker {self.host}:{self.port} not connected")
        camera = topic_name(message["camera"])
        state = "on" if message["state"] == "open" else "off"
        sent = [
            self.client.publish(f"{self.prefix}/{camera}/event", json.dumps(message), qos=1),
            self.client.publish(f"{self.prefix}/{camera}/state", state, qos=1, retain=True),
        ]
        for info in sent:
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"broker {self.host}:{self.port}: {paho.error_string(info.rc)}")
            info.wait_for_publish(timeout=self.timeout_s)
            if not info.is_published():
                raise TimeoutError(f"broker {self.host}:{self.port}: no PUBACK within {self.timeout_s:g} s")

    def close(self) -> None:
        super().close()
        if self._connected.is_set():
            self.client.publish(self.availability, "offline", qos=1, retain=True).wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()
