-- wrk script of benchmarks/dpop_whoami.py: every request is built by request(),
-- for every case alike, so the three cases pay the same Lua cost. With a file
-- argument, each request carries the next DPoP proof of that file (one per line,
-- each used once); without one, the -H headers only.
local proofs = {}
local next_proof = 0

function init(args)
  if args[1] ~= nil then
    for line in io.lines(args[1]) do
      proofs[#proofs + 1] = line
    end
  end
end

function request()
  if #proofs > 0 then
    next_proof = next_proof % #proofs + 1
    wrk.headers["DPoP"] = proofs[next_proof]
  end
  return wrk.format()
end
