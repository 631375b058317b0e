package tap

import "errors"

var (
	// ErrPermission means the process may not create or configure a TAP:
	// it needs CAP_NET_ADMIN (root, or `setcap cap_net_admin+ep ipopd`).
	ErrPermission = errors.New("tap: permission denied: creating a TAP needs CAP_NET_ADMIN (run as root or grant the capability)")
	// ErrNoTUN means /dev/net/tun is missing (no tun module, or a container
	// without the device).
	ErrNoTUN = errors.New("tap: /dev/net/tun is missing (load the tun module or pass the device into the container)")
	// ErrExists means another interface of another kind already has the name.
	ErrExists = errors.New("tap: an interface with this name exists")
	// ErrBridge means switch mode could not join the configured bridge.
	ErrBridge = errors.New("tap: bridge")
)
