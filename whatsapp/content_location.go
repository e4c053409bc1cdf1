package whatsapp

import (
	"fmt"
	"math"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// maxLabelBytes caps short labels: a location's name and address, a
// contact's name, a poll's option.
const maxLabelBytes = 1024

// LocationContent is a pin on the map.
type LocationContent struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// Validate wants coordinates on the globe (0,0 included) and short labels.
func (l *LocationContent) Validate() error {
	if math.IsNaN(l.Latitude) || l.Latitude < -90 || l.Latitude > 90 {
		return fmt.Errorf("%w: location: latitude %v is outside -90..90", ErrBadContent, l.Latitude)
	}
	if math.IsNaN(l.Longitude) || l.Longitude < -180 || l.Longitude > 180 {
		return fmt.Errorf("%w: location: longitude %v is outside -180..180", ErrBadContent, l.Longitude)
	}
	if len(l.Name) > maxLabelBytes || len(l.Address) > maxLabelBytes {
		return fmt.Errorf("%w: location: name and address are at most %d bytes each", ErrBadContent, maxLabelBytes)
	}
	return nil
}

func (l *LocationContent) build(_ *Content, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	lm := &waE2E.LocationMessage{DegreesLatitude: proto.Float64(l.Latitude), DegreesLongitude: proto.Float64(l.Longitude), ContextInfo: ci}
	if l.Name != "" {
		lm.Name = proto.String(l.Name)
	}
	if l.Address != "" {
		lm.Address = proto.String(l.Address)
	}
	return &waE2E.Message{LocationMessage: lm}, nil
}
