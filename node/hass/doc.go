// Package hass bridges a node's sensor readings to Home Assistant over
// MQTT: it asks the node's named sources for their readings (decrypted and
// verified on the node, package node/sensors) and publishes them with Home
// Assistant's MQTT discovery, so each stream appears in Home Assistant as
// a sensor with no YAML.
//
// For each stream it publishes, retained:
//
//	<discovery>/sensor/<device>/<object>/config   the discovery document (once per stream and run)
//	<state>/<nodeId>/<stream>/state               {"value":64.2,"at":"…","anomaly":false,"key":"…"}
//
// where <discovery> is "homeassistant" by default, <state> "mesh", <device>
// "mesh_" and the source's node ID, and <object> the stream name with '/'
// as '_'. The state document carries the newest reading of the stream;
// Home Assistant reads "value" (value_template) and shows the rest as
// attributes. The MQTT client is Eclipse Paho.
package hass
