-- Argo CD health check for faiss.dev/FaissIndex.
--
-- Reads only what the operator writes (status.observedGeneration, status.phase and the conditions
-- Ready, Progressing, Degraded, Reconciling, Stalled) and uses no library at all: it runs in the
-- restricted set Argo CD gives ConfigMap scripts (no string, math or io library; useOpenLibs unset).
-- The first rule that applies decides, and its condition's message becomes the health message:
--   status not written yet, or written for an older generation   Progressing
--   Stalled=True (a failed or rolled-back revision, a stuck rollback)  Degraded
--   phase Failed                                                   Degraded
--   Progressing=True with reason Paused (spec.paused, or a step waiting for faiss.dev/promote)  Suspended
--   Reconciling=True (building, deploying, a canary step, promoting, rolling back)  Progressing
--   Ready=True                                                     Healthy
--   Degraded=True (no serving replica ready)                       Degraded
--   otherwise (nothing serves yet)                                 Progressing

local function condition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local hs = {}
local status = obj.status
local generation = obj.metadata.generation

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the FaissIndex"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local stalled = condition(status, "Stalled")
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = messageOf(stalled, "Stalled")
  return hs
end

local degraded = condition(status, "Degraded")
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = messageOf(degraded, "phase Failed")
  return hs
end

local progressing = condition(status, "Progressing")
if isTrue(progressing) and progressing.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = messageOf(progressing, "Paused")
  return hs
end

local reconciling = condition(status, "Reconciling")
if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = messageOf(reconciling, "Reconciling")
  return hs
end

local ready = condition(status, "Ready")
if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Ready")
  return hs
end

if isTrue(degraded) then
  hs.status = "Degraded"
  hs.message = messageOf(degraded, "Degraded")
  return hs
end

hs.status = "Progressing"
hs.message = messageOf(ready, "Waiting for a revision to serve")
return hs
