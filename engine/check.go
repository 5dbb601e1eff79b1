package engine

import "github.com/vigil-gw/vigil/rules"

// CheckFiles checks rule files given as contents the way `vigil check`
// does: it parses them, builds every operator of the rules that parsed
// (detector parameters are judged only there), and reports every problem,
// sorted by file (in the order of names), line and column. The set holds
// the valid rules; it is the whole set only when errs is empty. err is an
// error without a position (too many rules).
func CheckFiles(names []string, srcs map[string][]byte) (set *rules.Set, errs rules.Errors, err error) {
	set, errs = rules.ParseValid(names, srcs)
	if cerr := Check(set); cerr != nil {
		es := rules.AsErrors(cerr)
		if es == nil {
			return set, errs, cerr
		}
		errs = append(errs, es...)
	}
	rules.SortErrors(errs, names)
	return set, errs, nil
}
