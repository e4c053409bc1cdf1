package app

import (
	"context"
	"errors"
)

func (c *cli) selftest(ctx context.Context, args []string) error {
	return errors.New("selftest: not implemented yet")
}

func (c *cli) doctor(ctx context.Context, args []string) error {
	return errors.New("doctor: not implemented yet")
}
