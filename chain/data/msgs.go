package data

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agoranet/agora/chain/types"
)

// Limits of the messages' shapes (stateless).
const (
	MaxName        = 128
	MaxDescription = 4096
	MaxLicence     = 256
	MaxModules     = 64
	MaxBuyers      = 256
	MaxAuditors    = 32
	// MaxSize bounds a dataset's blob (1 TiB).
	MaxSize = 1 << 40
	// MaxPrice bounds prices (uagr) so that sums and fee shares cannot
	// overflow 64 bits.
	MaxPrice = 1_000_000_000_000_000
)

// Message names (type_url of the module_msg carrying each).
const (
	MsgPublish = "publish_dataset"
	MsgUpdate  = "update_dataset"
	MsgRetire  = "retire_dataset"
	MsgBuy     = "buy_access"
)

// Msgs declares the data market's messages; they travel in TxBody's
// generic module_msg. Their gas is types.DataDefaultGas (a chain/app test
// keeps the two equal).
func Msgs() []types.MsgSpec {
	g := types.DataDefaultGas
	return []types.MsgSpec{
		types.DeclareModuleMsg(MsgPublish, func() *types.MsgPublishDataset { return &types.MsgPublishDataset{} }, ValidatePublish,
			func(m *types.MsgPublishDataset) types.Description {
				d := fields("root", hex.EncodeToString(m.Root), "size", u64(m.Size), "name", m.Name,
					"host", types.Address(m.Host).String(), "download", strconv.FormatBool(m.Download),
					"download_price", u64(m.DownloadPrice), "run_price", u64(m.RunPrice), "output_cap", u64(m.OutputCap),
					"allowed_modules", u64(uint64(len(m.AllowedModules))), "buyers", u64(uint64(len(m.Buyers))),
					"auditors", u64(uint64(len(m.Auditors))))
				d.Touches = append(d.Touches, m.Host)
				return d
			}).WithGas(g[MsgPublish]),
		types.DeclareModuleMsg(MsgUpdate, func() *types.MsgUpdateDataset { return &types.MsgUpdateDataset{} }, ValidateUpdate,
			func(m *types.MsgUpdateDataset) types.Description {
				return fields("dataset_id", u64(m.Id), "download", strconv.FormatBool(m.Download),
					"download_price", u64(m.DownloadPrice), "run_price", u64(m.RunPrice), "output_cap", u64(m.OutputCap),
					"allowed_modules", u64(uint64(len(m.AllowedModules))), "buyers", u64(uint64(len(m.Buyers))),
					"auditors", u64(uint64(len(m.Auditors))))
			}).WithGas(g[MsgUpdate]),
		types.DeclareModuleMsg(MsgRetire, func() *types.MsgRetireDataset { return &types.MsgRetireDataset{} },
			func(m *types.MsgRetireDataset) error {
				if m == nil || m.Id == 0 {
					return errors.New("retire_dataset: id required")
				}
				return nil
			},
			func(m *types.MsgRetireDataset) types.Description { return fields("dataset_id", u64(m.Id)) }).WithGas(g[MsgRetire]),
		types.DeclareModuleMsg(MsgBuy, func() *types.MsgBuyAccess { return &types.MsgBuyAccess{} },
			func(m *types.MsgBuyAccess) error {
				if m == nil || m.DatasetId == 0 {
					return errors.New("buy_access: dataset_id required")
				}
				return nil
			},
			func(m *types.MsgBuyAccess) types.Description {
				return fields("dataset_id", u64(m.DatasetId), "max_price", u64(m.MaxPrice))
			}).WithGas(g[MsgBuy]),
	}
}

// ValidatePublish checks a publish message's shape.
func ValidatePublish(m *types.MsgPublishDataset) error {
	if m == nil {
		return errors.New("publish_dataset: empty message")
	}
	switch {
	case len(m.Root) != types.HashLen:
		return fmt.Errorf("publish_dataset: root must be a %d-byte blob id", types.HashLen)
	case m.Size == 0 || m.Size > MaxSize:
		return fmt.Errorf("publish_dataset: size must be between 1 and %d bytes", uint64(MaxSize))
	case len(m.Host) != types.AddressLen:
		return fmt.Errorf("publish_dataset: host must be a %d-byte provider address", types.AddressLen)
	}
	if err := ValidName(m.Name); err != nil {
		return fmt.Errorf("publish_dataset: %w", err)
	}
	if err := validTerms(m.Description, m.Licence, m.Download, m.DownloadPrice, m.RunPrice, m.AllowedModules, m.OutputCap, m.Buyers, m.Auditors); err != nil {
		return fmt.Errorf("publish_dataset: %w", err)
	}
	return nil
}

// ValidateUpdate checks an update message's shape.
func ValidateUpdate(m *types.MsgUpdateDataset) error {
	if m == nil || m.Id == 0 {
		return errors.New("update_dataset: id required")
	}
	if err := validTerms(m.Description, m.Licence, m.Download, m.DownloadPrice, m.RunPrice, m.AllowedModules, m.OutputCap, m.Buyers, m.Auditors); err != nil {
		return fmt.Errorf("update_dataset: %w", err)
	}
	return nil
}

// ValidName accepts a plain file name: a dataset that is not a tar is
// exposed to its jobs as /data/<name>.
func ValidName(n string) error {
	switch {
	case n == "" || len(n) > MaxName:
		return fmt.Errorf("name must be 1 to %d bytes", MaxName)
	case n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") || hasControl(n):
		return fmt.Errorf("name %q is not a plain file name", n)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// validTerms checks the mutable terms shared by publish and update.
func validTerms(description, licence string, download bool, downloadPrice, runPrice uint64,
	modules [][]byte, outputCap uint64, buyers, auditors [][]byte) error {
	switch {
	case len(description) > MaxDescription:
		return fmt.Errorf("description is %d bytes (at most %d)", len(description), MaxDescription)
	case len(licence) > MaxLicence:
		return fmt.Errorf("licence is %d bytes (at most %d)", len(licence), MaxLicence)
	case !download && downloadPrice != 0:
		return errors.New("download_price given but downloads are not sold (download is false)")
	case downloadPrice > MaxPrice || runPrice > MaxPrice:
		return fmt.Errorf("prices must be at most %d uagr", uint64(MaxPrice))
	case outputCap == 0:
		return errors.New("output_cap must be positive (bytes of output a run may deliver)")
	case len(modules) > MaxModules:
		return fmt.Errorf("at most %d allowed modules", MaxModules)
	case len(buyers) > MaxBuyers:
		return fmt.Errorf("at most %d buyers", MaxBuyers)
	case len(auditors) > MaxAuditors:
		return fmt.Errorf("at most %d auditors", MaxAuditors)
	}
	if err := distinct("allowed module", modules, types.HashLen); err != nil {
		return err
	}
	if err := distinct("buyer", buyers, types.AddressLen); err != nil {
		return err
	}
	return distinct("auditor", auditors, types.AddressLen)
}

// distinct checks that each entry has n bytes and none repeats.
func distinct(what string, list [][]byte, n int) error {
	seen := make(map[string]bool, len(list))
	for _, b := range list {
		if len(b) != n {
			return fmt.Errorf("%s %x must be %d bytes", what, b, n)
		}
		if seen[string(b)] {
			return fmt.Errorf("%s %x given twice", what, b)
		}
		seen[string(b)] = true
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func fields(kv ...string) types.Description {
	d := types.Description{Fields: make([][2]string, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Fields = append(d.Fields, [2]string{kv[i], kv[i+1]})
	}
	return d
}
