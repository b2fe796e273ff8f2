// MagacqTest: a Micro-Manager device adapter for magacq's tests.
//
// Devices:
//   MagacqCamera  - a camera with sequence acquisition, 8/16-bit and 32-bit float pixels
//                   (Micro-Manager's 4-byte grey), ROI, binning, exposure.
//                   The first 8 bytes of every frame hold the frame counter (uint64, little
//                   endian, 0 for the first frame after a start), so tests can check that every
//                   frame arrives, in order, intact. Pattern "Counter" fills the rest of the frame
//                   with (counter + pixel index) mod 2^bits; pattern "Beads" renders ring-pattern
//                   beads whose look depends on the position of the Z stage named by the
//                   "FocusStage" property. "StampElapsed" = No leaves ElapsedTime-ms out of the
//                   frame metadata (MMCore then stamps it, in whole ms since the start). After
//                   each frame it triggers the "FocusStage" stage when that is a
//                   MagacqSeqStage running a sequence (as a camera's TTL output would).
//   MagacqZStage  - a focus stage, positions in um, settling for "SettleMs" after each move.
//   MagacqMagnetStage - a motor stage for the magnets (height or rotation), positions in the
//                   stage's units ("um"; a rotation stage reports degrees), moving at
//                   "Velocity" units/s: a move takes |distance| / Velocity, the position
//                   passing through every point on the way; Stop() halts it where it is.
//                   "Fault" injects a motor fault: "Refuse" fails every move with an error,
//                   "Stall" accepts a move but never gets there (busy until stopped).
//   MagacqPlainStage - a stage as many adapters are: no velocity property, a move that is
//                   over when SetPosition returns (never busy). "MoveLog" (pre-init), a file
//                   each move's target (um) is appended to, lets a test see from another
//                   process whether a run moved it.
//   MagacqSeqStage - a focus stage that runs hardware sequences (UseSequences): up to
//                   "SequenceMaxLength" positions, one step per camera trigger, cycling. Its
//                   limits (LowerLimitUm, UpperLimitUm) are internal: it refuses positions
//                   outside them but does not publish them on its Position property.
//   MagacqXYStage - an XY stage (steps of 0.1 um, +-10 mm), there to be named where a
//                   single-axis stage belongs.
//
// Built by simulators/mm_adapter/build.py against the MMDevice sources of the pinned pymmcore.

#include "DeviceBase.h"
#include "ModuleInterface.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const char* const kCameraName = "MagacqCamera";
const char* const kStageName = "MagacqZStage";
const char* const kMagnetStageName = "MagacqMagnetStage";
const char* const kPlainStageName = "MagacqPlainStage";
const char* const kSeqStageName = "MagacqSeqStage";
const char* const kXYStageName = "MagacqXYStage";
const char* const kFaultNone = "None";
const char* const kFaultRefuse = "Refuse";
const char* const kFaultStall = "Stall";
const int kErrMotorFault = 10101;
const char* const kPatternCounter = "Counter";
const char* const kPatternBeads = "Beads";
const char* const kPixel8 = "8bit";
const char* const kPixel16 = "16bit";
const char* const kPixel32 = "32bit";  // float, as Micro-Manager's demo camera has it
const char* const kYes = "Yes";
const char* const kNo = "No";

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
   return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

// ------------------------------------------------------------------------------------------
// What both stages share: limits from the pre-init properties LowerLimitUm / UpperLimitUm, the
// Position property, steps of 1 nm, no origin, no sequencing. T supplies SetPositionUm and
// GetPositionUm.
// ------------------------------------------------------------------------------------------

template <class T>
class MagacqStage : public CStageBase<T> {
public:
   int Shutdown() override { return DEVICE_OK; }
   int SetPositionSteps(long steps) override { return Self()->SetPositionUm(steps * kStepUm); }
   int GetPositionSteps(long& steps) override {
      double pos;
      Self()->GetPositionUm(pos);
      steps = std::lround(pos / kStepUm);
      return DEVICE_OK;
   }
   int SetOrigin() override { return DEVICE_UNSUPPORTED_COMMAND; }
   int GetLimits(double& lower, double& upper) override {
      lower = lower_;
      upper = upper_;
      return DEVICE_OK;
   }
   int IsStageSequenceable(bool& isSequenceable) const override {
      isSequenceable = false;
      return DEVICE_OK;
   }
   bool IsContinuousFocusDrive() const override { return false; }

   int OnPosition(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         double pos;
         Self()->GetPositionUm(pos);
         prop->Set(pos);
      } else if (act == MM::AfterSet) {
         double v;
         prop->Get(v);
         return Self()->SetPositionUm(v);
      }
      return DEVICE_OK;
   }

protected:
   // SetPositionUm / GetPositionUm are private in CStageBase: call them on T.
   T* Self() { return static_cast<T*>(this); }

   MagacqStage(double lower, double upper) {
      this->InitializeDefaultErrorMessages();
      this->CreateFloatProperty("LowerLimitUm", lower, false, nullptr, true);
      this->CreateFloatProperty("UpperLimitUm", upper, false, nullptr, true);
   }

   // Reads LowerLimitUm / UpperLimitUm; false when they leave no range.
   bool ReadLimits() {
      char buf[MM::MaxStrLength];
      this->GetProperty("LowerLimitUm", buf);
      lower_ = std::atof(buf);
      this->GetProperty("UpperLimitUm", buf);
      upper_ = std::atof(buf);
      return lower_ < upper_;
   }

   // The Position property; with publishLimits, limited to [lower_, upper_].
   void CreatePositionProperty(double start, bool publishLimits = true) {
      this->CreateFloatProperty(MM::g_Keyword_Position, start, false,
                                new typename CStageBase<T>::CPropertyAction(
                                   static_cast<T*>(this), &T::OnPosition));
      if (publishLimits) this->SetPropertyLimits(MM::g_Keyword_Position, lower_, upper_);
   }

   static constexpr double kStepUm = 0.001;
   double lower_ = 0.0;
   double upper_ = 0.0;
};

// ------------------------------------------------------------------------------------------
// Z stage
// ------------------------------------------------------------------------------------------

class MagacqZStage : public MagacqStage<MagacqZStage> {
public:
   MagacqZStage() : MagacqStage(-100.0, 100.0) {}

   int Initialize() override {
      if (!ReadLimits()) return DEVICE_INVALID_PROPERTY_LIMTS;
      pos_ = std::min(std::max(0.0, lower_), upper_);
      CreatePositionProperty(pos_);
      CreateFloatProperty("SettleMs", 2.0, false,
                          new CPropertyAction(this, &MagacqZStage::OnSettle));
      SetPropertyLimits("SettleMs", 0.0, 10000.0);
      return DEVICE_OK;
   }

   void GetName(char* name) const override { CDeviceUtils::CopyLimitedString(name, kStageName); }
   bool Busy() override { return Clock::now() < settledAt_.load(); }

   int SetPositionUm(double pos) override {
      if (pos < lower_ || pos > upper_) return DEVICE_UNKNOWN_POSITION;
      pos_ = pos;
      auto settle = std::chrono::duration_cast<Clock::duration>(
         std::chrono::duration<double, std::milli>(settleMs_.load()));
      settledAt_ = Clock::now() + settle;
      OnStagePositionChanged(pos);
      return DEVICE_OK;
   }
   int GetPositionUm(double& pos) override {
      pos = pos_.load();
      return DEVICE_OK;
   }

   int OnSettle(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(settleMs_.load());
      } else if (act == MM::AfterSet) {
         double v;
         prop->Get(v);
         settleMs_ = v;
      }
      return DEVICE_OK;
   }

private:
   std::atomic<double> pos_{0.0};
   std::atomic<double> settleMs_{2.0};
   std::atomic<Clock::time_point> settledAt_{Clock::time_point{}};
};

// ------------------------------------------------------------------------------------------
// Magnet stage
// ------------------------------------------------------------------------------------------

class MagacqMagnetStage : public MagacqStage<MagacqMagnetStage> {
public:
   MagacqMagnetStage() : MagacqStage(0.0, 20000.0) {
      SetErrorText(kErrMotorFault, "MagacqMagnetStage: motor fault (injected by Fault=Refuse)");
      CreateFloatProperty("StartUm", 0.0, false, nullptr, true);
   }

   int Initialize() override {
      char buf[MM::MaxStrLength];
      GetProperty("StartUm", buf);
      const double start = std::atof(buf);
      if (!ReadLimits() || start < lower_ || start > upper_) return DEVICE_INVALID_PROPERTY_LIMTS;
      from_ = to_ = start;
      CreatePositionProperty(start);
      CreateFloatProperty("Velocity", 1000.0, false,
                          new CPropertyAction(this, &MagacqMagnetStage::OnVelocity));
      SetPropertyLimits("Velocity", 0.001, 1.0e6);
      CreateStringProperty("Fault", kFaultNone, false,
                           new CPropertyAction(this, &MagacqMagnetStage::OnFault));
      AddAllowedValue("Fault", kFaultNone);
      AddAllowedValue("Fault", kFaultRefuse);
      AddAllowedValue("Fault", kFaultStall);
      return DEVICE_OK;
   }

   void GetName(char* name) const override {
      CDeviceUtils::CopyLimitedString(name, kMagnetStageName);
   }
   bool Busy() override {
      std::lock_guard<std::mutex> g(lock_);
      return stalled_ || Clock::now() < end_;
   }

   int SetPositionUm(double pos) override {
      if (pos < lower_ || pos > upper_) return DEVICE_UNKNOWN_POSITION;
      std::lock_guard<std::mutex> g(lock_);
      if (fault_ == kFaultRefuse) return kErrMotorFault;
      const auto now = Clock::now();
      from_ = PositionAt(now);
      to_ = pos;
      t0_ = now;
      stalled_ = (fault_ == kFaultStall);
      end_ = now + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(std::fabs(to_ - from_) / velocity_));
      return DEVICE_OK;
   }
   int GetPositionUm(double& pos) override {
      std::lock_guard<std::mutex> g(lock_);
      pos = PositionAt(Clock::now());
      return DEVICE_OK;
   }
   int Stop() override {
      std::lock_guard<std::mutex> g(lock_);
      const auto now = Clock::now();
      from_ = to_ = PositionAt(now);
      end_ = now;
      stalled_ = false;
      return DEVICE_OK;
   }

   int OnVelocity(MM::PropertyBase* prop, MM::ActionType act) {
      std::lock_guard<std::mutex> g(lock_);
      if (act == MM::BeforeGet) {
         prop->Set(velocity_);
      } else if (act == MM::AfterSet) {
         prop->Get(velocity_);
      }
      return DEVICE_OK;
   }
   int OnFault(MM::PropertyBase* prop, MM::ActionType act) {
      std::lock_guard<std::mutex> g(lock_);
      if (act == MM::BeforeGet) {
         prop->Set(fault_.c_str());
      } else if (act == MM::AfterSet) {
         prop->Get(fault_);
      }
      return DEVICE_OK;
   }

private:
   // Where the motor is at `t` (call with lock_ held): from_ towards to_ at velocity_.
   double PositionAt(Clock::time_point t) const {
      if (stalled_) return from_;
      if (t >= end_) return to_;
      const double moved = std::chrono::duration<double>(t - t0_).count() * velocity_;
      return to_ > from_ ? from_ + moved : from_ - moved;
   }

   std::mutex lock_;
   double from_ = 0.0;
   double to_ = 0.0;
   double velocity_ = 1000.0;
   bool stalled_ = false;
   std::string fault_ = kFaultNone;
   Clock::time_point t0_{};
   Clock::time_point end_{};
};

// ------------------------------------------------------------------------------------------
// Plain stage: no velocity, instant moves
// ------------------------------------------------------------------------------------------

class MagacqPlainStage : public MagacqStage<MagacqPlainStage> {
public:
   MagacqPlainStage() : MagacqStage(0.0, 20000.0) {
      CreateFloatProperty("StartUm", 0.0, false, nullptr, true);
      CreateStringProperty("MoveLog", "", false, nullptr, true);
   }

   int Initialize() override {
      char buf[MM::MaxStrLength];
      GetProperty("MoveLog", buf);
      moveLog_ = buf;
      GetProperty("StartUm", buf);
      const double start = std::atof(buf);
      if (!ReadLimits() || start < lower_ || start > upper_) return DEVICE_INVALID_PROPERTY_LIMTS;
      pos_ = start;
      CreatePositionProperty(start);
      return DEVICE_OK;
   }

   void GetName(char* name) const override {
      CDeviceUtils::CopyLimitedString(name, kPlainStageName);
   }
   bool Busy() override { return false; }

   int SetPositionUm(double pos) override {
      if (pos < lower_ || pos > upper_) return DEVICE_UNKNOWN_POSITION;
      pos_ = pos;
      if (!moveLog_.empty()) std::ofstream(moveLog_, std::ios::app) << pos << "\n";
      return DEVICE_OK;
   }
   int GetPositionUm(double& pos) override {
      pos = pos_.load();
      return DEVICE_OK;
   }

private:
   std::atomic<double> pos_{0.0};
   std::string moveLog_;
};

// ------------------------------------------------------------------------------------------
// Sequenceable focus stage with internal limits
// ------------------------------------------------------------------------------------------

class MagacqSeqStage : public MagacqStage<MagacqSeqStage> {
public:
   MagacqSeqStage() : MagacqStage(-50.0, 50.0) {
      CreateIntegerProperty("SequenceMaxLength", 1024, false, nullptr, true);
   }

   int Initialize() override {
      if (!ReadLimits()) return DEVICE_INVALID_PROPERTY_LIMTS;
      char buf[MM::MaxStrLength];
      GetProperty("SequenceMaxLength", buf);
      maxLength_ = std::atol(buf);
      pos_ = std::min(std::max(0.0, lower_), upper_);
      CreatePositionProperty(pos_, false);
      return DEVICE_OK;
   }

   void GetName(char* name) const override {
      CDeviceUtils::CopyLimitedString(name, kSeqStageName);
   }
   bool Busy() override { return false; }

   int SetPositionUm(double pos) override {
      if (pos < lower_ || pos > upper_) return DEVICE_UNKNOWN_POSITION;
      std::lock_guard<std::mutex> g(lock_);
      pos_ = pos;
      return DEVICE_OK;
   }
   int GetPositionUm(double& pos) override {
      std::lock_guard<std::mutex> g(lock_);
      pos = pos_;
      return DEVICE_OK;
   }

   int IsStageSequenceable(bool& isSequenceable) const override {
      isSequenceable = true;
      return DEVICE_OK;
   }
   int GetStageSequenceMaxLength(long& n) const override {
      n = maxLength_;
      return DEVICE_OK;
   }
   int ClearStageSequence() override {
      std::lock_guard<std::mutex> g(lock_);
      pending_.clear();
      return DEVICE_OK;
   }
   int AddToStageSequence(double pos) override {
      if (pos < lower_ || pos > upper_) return DEVICE_UNKNOWN_POSITION;
      std::lock_guard<std::mutex> g(lock_);
      if (static_cast<long>(pending_.size()) >= maxLength_) return DEVICE_SEQUENCE_TOO_LARGE;
      pending_.push_back(pos);
      return DEVICE_OK;
   }
   int SendStageSequence() override {
      std::lock_guard<std::mutex> g(lock_);
      sequence_ = pending_;
      return DEVICE_OK;
   }
   // Goes to the first position; each Trigger() steps to the next, cycling.
   int StartStageSequence() override {
      std::lock_guard<std::mutex> g(lock_);
      if (sequence_.empty()) return DEVICE_ERR;
      running_ = true;
      index_ = 0;
      pos_ = sequence_[0];
      return DEVICE_OK;
   }
   int StopStageSequence() override {
      std::lock_guard<std::mutex> g(lock_);
      running_ = false;
      return DEVICE_OK;
   }

   // The camera's trigger: the next position of a running sequence.
   void Trigger() {
      std::lock_guard<std::mutex> g(lock_);
      if (!running_) return;
      index_ = (index_ + 1) % sequence_.size();
      pos_ = sequence_[index_];
   }

private:
   std::mutex lock_;
   double pos_ = 0.0;
   long maxLength_ = 1024;
   std::vector<double> pending_;
   std::vector<double> sequence_;
   size_t index_ = 0;
   bool running_ = false;
};

// ------------------------------------------------------------------------------------------
// XY stage
// ------------------------------------------------------------------------------------------

class MagacqXYStage : public CXYStageBase<MagacqXYStage> {
public:
   MagacqXYStage() { InitializeDefaultErrorMessages(); }

   int Initialize() override { return DEVICE_OK; }
   int Shutdown() override { return DEVICE_OK; }
   void GetName(char* name) const override { CDeviceUtils::CopyLimitedString(name, kXYStageName); }
   bool Busy() override { return false; }

   int SetPositionSteps(long x, long y) override {
      if (std::labs(x) > kMaxSteps || std::labs(y) > kMaxSteps) return DEVICE_UNKNOWN_POSITION;
      x_ = x;
      y_ = y;
      return DEVICE_OK;
   }
   int GetPositionSteps(long& x, long& y) override {
      x = x_;
      y = y_;
      return DEVICE_OK;
   }
   int Home() override { return SetPositionSteps(0, 0); }
   int Stop() override { return DEVICE_OK; }
   int SetOrigin() override { return DEVICE_UNSUPPORTED_COMMAND; }
   int GetLimitsUm(double& xMin, double& xMax, double& yMin, double& yMax) override {
      xMin = yMin = -kMaxSteps * kStepUm;
      xMax = yMax = kMaxSteps * kStepUm;
      return DEVICE_OK;
   }
   int GetStepLimits(long& xMin, long& xMax, long& yMin, long& yMax) override {
      xMin = yMin = -kMaxSteps;
      xMax = yMax = kMaxSteps;
      return DEVICE_OK;
   }
   double GetStepSizeXUm() override { return kStepUm; }
   double GetStepSizeYUm() override { return kStepUm; }
   int IsXYStageSequenceable(bool& isSequenceable) const override {
      isSequenceable = false;
      return DEVICE_OK;
   }

private:
   static constexpr double kStepUm = 0.1;
   static constexpr long kMaxSteps = 100000;
   std::atomic<long> x_{0}, y_{0};
};

// ------------------------------------------------------------------------------------------
// Camera
// ------------------------------------------------------------------------------------------

class MagacqCamera : public CCameraBase<MagacqCamera> {
public:
   MagacqCamera() {
      InitializeDefaultErrorMessages();
      CreateIntegerProperty("SensorWidth", 512, false, nullptr, true);
      SetPropertyLimits("SensorWidth", 16, 8192);
      CreateIntegerProperty("SensorHeight", 512, false, nullptr, true);
      SetPropertyLimits("SensorHeight", 16, 8192);
   }

   ~MagacqCamera() override { StopThread(); }

   int Initialize() override {
      if (initialized_) return DEVICE_OK;
      char buf[MM::MaxStrLength];
      GetProperty("SensorWidth", buf);
      sensorW_ = static_cast<unsigned>(std::atol(buf));
      GetProperty("SensorHeight", buf);
      sensorH_ = static_cast<unsigned>(std::atol(buf));
      roiW_ = sensorW_;
      roiH_ = sensorH_;

      CreateStringProperty(MM::g_Keyword_PixelType, kPixel16, false,
                           new CPropertyAction(this, &MagacqCamera::OnPixelType));
      AddAllowedValue(MM::g_Keyword_PixelType, kPixel8);
      AddAllowedValue(MM::g_Keyword_PixelType, kPixel16);
      AddAllowedValue(MM::g_Keyword_PixelType, kPixel32);

      CreateStringProperty("StampElapsed", kYes, false,
                           new CPropertyAction(this, &MagacqCamera::OnStampElapsed));
      AddAllowedValue("StampElapsed", kYes);
      AddAllowedValue("StampElapsed", kNo);

      CreateIntegerProperty(MM::g_Keyword_Binning, 1, false,
                            new CPropertyAction(this, &MagacqCamera::OnBinning));
      AddAllowedValue(MM::g_Keyword_Binning, "1");
      AddAllowedValue(MM::g_Keyword_Binning, "2");
      AddAllowedValue(MM::g_Keyword_Binning, "4");

      CreateFloatProperty(MM::g_Keyword_Exposure, 10.0, false,
                          new CPropertyAction(this, &MagacqCamera::OnExposure));
      SetPropertyLimits(MM::g_Keyword_Exposure, 0.0, 10000.0);

      CreateStringProperty("Pattern", kPatternCounter, false,
                           new CPropertyAction(this, &MagacqCamera::OnPattern));
      AddAllowedValue("Pattern", kPatternCounter);
      AddAllowedValue("Pattern", kPatternBeads);

      CreateStringProperty("FocusStage", "Z", false,
                           new CPropertyAction(this, &MagacqCamera::OnFocusStage));
      CreateIntegerProperty("BeadCount", 4, false,
                            new CPropertyAction(this, &MagacqCamera::OnBeadCount));
      SetPropertyLimits("BeadCount", 0, 64);
      CreateFloatProperty("BeadFocusUm", -5.0, false,
                          new CPropertyAction(this, &MagacqCamera::OnBeadFocus));
      SetPropertyLimits("BeadFocusUm", -1000.0, 1000.0);
      CreateIntegerProperty("Noise", 0, false,
                            new CPropertyAction(this, &MagacqCamera::OnNoise));
      SetPropertyLimits("Noise", 0, 1000);

      ResizeBuffers();
      initialized_ = true;
      return DEVICE_OK;
   }

   int Shutdown() override {
      StopThread();
      initialized_ = false;
      return DEVICE_OK;
   }

   void GetName(char* name) const override { CDeviceUtils::CopyLimitedString(name, kCameraName); }
   bool Busy() override { return false; }

   // --- snap -----------------------------------------------------------------------------
   int SnapImage() override {
      std::lock_guard<std::mutex> g(settingsLock_);
      if (exposureMs_ > 0)
         std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(exposureMs_));
      Render(snapBuf_, snapCounter_++);
      return DEVICE_OK;
   }
   const unsigned char* GetImageBuffer() override { return snapBuf_.data(); }
   unsigned GetImageWidth() const override { return roiW_; }
   unsigned GetImageHeight() const override { return roiH_; }
   unsigned GetImageBytesPerPixel() const override { return bytesPerPixel_; }
   unsigned GetBitDepth() const override { return 8 * bytesPerPixel_; }  // float: 32
   long GetImageBufferSize() const override {
      return static_cast<long>(roiW_) * roiH_ * bytesPerPixel_;
   }

   // --- geometry and exposure --------------------------------------------------------------
   int GetBinning() const override { return binning_; }
   int SetBinning(int bin) override {
      return SetProperty(MM::g_Keyword_Binning, CDeviceUtils::ConvertToString(bin));
   }
   void SetExposure(double ms) override {
      SetProperty(MM::g_Keyword_Exposure, CDeviceUtils::ConvertToString(ms));
      GetCoreCallback()->OnExposureChanged(this, ms);
   }
   double GetExposure() const override { return exposureMs_; }
   int IsExposureSequenceable(bool& seq) const override {
      seq = false;
      return DEVICE_OK;
   }

   // ROI in binned pixels, as MMCore passes it.
   int SetROI(unsigned x, unsigned y, unsigned w, unsigned h) override {
      if (IsCapturing()) return DEVICE_CAMERA_BUSY_ACQUIRING;
      if (w == 0 || h == 0 || x + w > sensorW_ / binning_ || y + h > sensorH_ / binning_)
         return DEVICE_INVALID_INPUT_PARAM;
      roiX_ = x;
      roiY_ = y;
      roiW_ = w;
      roiH_ = h;
      ResizeBuffers();
      return DEVICE_OK;
   }
   int GetROI(unsigned& x, unsigned& y, unsigned& w, unsigned& h) override {
      x = roiX_;
      y = roiY_;
      w = roiW_;
      h = roiH_;
      return DEVICE_OK;
   }
   int ClearROI() override {
      if (IsCapturing()) return DEVICE_CAMERA_BUSY_ACQUIRING;
      roiX_ = roiY_ = 0;
      roiW_ = sensorW_ / binning_;
      roiH_ = sensorH_ / binning_;
      ResizeBuffers();
      return DEVICE_OK;
   }

   // --- sequence acquisition ---------------------------------------------------------------
   int StartSequenceAcquisition(double) override {
      return StartSequenceAcquisition(-1, 0.0, false);
   }
   int StartSequenceAcquisition(long numImages, double, bool) override {
      if (IsCapturing()) return DEVICE_CAMERA_BUSY_ACQUIRING;
      if (thread_.joinable()) thread_.join();
      int ret = GetCoreCallback()->PrepareForAcq(this);
      if (ret != DEVICE_OK) return ret;
      stopRequested_ = false;
      capturing_ = true;
      thread_ = std::thread(&MagacqCamera::RunSequence, this, numImages);
      return DEVICE_OK;
   }
   int StopSequenceAcquisition() override {
      StopThread();
      return DEVICE_OK;
   }
   bool IsCapturing() override { return capturing_.load(); }

   // --- property handlers ------------------------------------------------------------------
   int OnPixelType(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(bytesPerPixel_ == 1 ? kPixel8 : bytesPerPixel_ == 2 ? kPixel16 : kPixel32);
      } else if (act == MM::AfterSet) {
         if (IsCapturing()) return DEVICE_CAMERA_BUSY_ACQUIRING;
         std::string v;
         prop->Get(v);
         bytesPerPixel_ = (v == kPixel8) ? 1 : (v == kPixel16) ? 2 : 4;
         ResizeBuffers();
      }
      return DEVICE_OK;
   }
   int OnBinning(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(static_cast<long>(binning_));
      } else if (act == MM::AfterSet) {
         if (IsCapturing()) return DEVICE_CAMERA_BUSY_ACQUIRING;
         long v;
         prop->Get(v);
         binning_ = static_cast<unsigned>(v);
         roiX_ = roiY_ = 0;
         roiW_ = sensorW_ / binning_;
         roiH_ = sensorH_ / binning_;
         ResizeBuffers();
      }
      return DEVICE_OK;
   }
   int OnExposure(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(exposureMs_.load());
      } else if (act == MM::AfterSet) {
         double v;
         prop->Get(v);
         exposureMs_ = v;
      }
      return DEVICE_OK;
   }
   int OnStampElapsed(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(stampElapsed_ ? kYes : kNo);
      } else if (act == MM::AfterSet) {
         std::string v;
         prop->Get(v);
         stampElapsed_ = (v == kYes);
      }
      return DEVICE_OK;
   }
   int OnPattern(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(beads_ ? kPatternBeads : kPatternCounter);
      } else if (act == MM::AfterSet) {
         std::string v;
         prop->Get(v);
         beads_ = (v == kPatternBeads);
      }
      return DEVICE_OK;
   }
   int OnFocusStage(MM::PropertyBase* prop, MM::ActionType act) {
      std::lock_guard<std::mutex> g(stageLock_);
      if (act == MM::BeforeGet) {
         prop->Set(stageLabel_.c_str());
      } else if (act == MM::AfterSet) {
         prop->Get(stageLabel_);
      }
      return DEVICE_OK;
   }
   int OnBeadCount(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(static_cast<long>(beadCount_.load()));
      } else if (act == MM::AfterSet) {
         long v;
         prop->Get(v);
         beadCount_ = static_cast<int>(v);
      }
      return DEVICE_OK;
   }
   int OnBeadFocus(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(beadFocusUm_.load());
      } else if (act == MM::AfterSet) {
         double v;
         prop->Get(v);
         beadFocusUm_ = v;
      }
      return DEVICE_OK;
   }
   int OnNoise(MM::PropertyBase* prop, MM::ActionType act) {
      if (act == MM::BeforeGet) {
         prop->Set(static_cast<long>(noise_.load()));
      } else if (act == MM::AfterSet) {
         long v;
         prop->Get(v);
         noise_ = static_cast<int>(v);
      }
      return DEVICE_OK;
   }

private:
   void ResizeBuffers() {
      snapBuf_.assign(static_cast<size_t>(roiW_) * roiH_ * bytesPerPixel_, 0);
   }

   void StopThread() {
      {
         std::lock_guard<std::mutex> g(stopLock_);
         stopRequested_ = true;
      }
      stopCv_.notify_all();
      if (thread_.joinable()) thread_.join();
   }

   void RunSequence(long numImages) {
      std::vector<unsigned char> frame(GetImageBufferSize());
      const unsigned w = roiW_, h = roiH_, bpp = bytesPerPixel_;
      const Clock::time_point t0 = Clock::now();
      char label[MM::MaxStrLength];
      GetLabel(label);
      MM::CameraImageMetadata md;
      int status = DEVICE_OK;
      for (long i = 0; numImages < 0 || i < numImages; ++i) {
         const double intervalMs = exposureMs_.load();
         if (intervalMs > 0) {
            auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double, std::milli>(intervalMs * (i + 1)));
            std::unique_lock<std::mutex> lk(stopLock_);
            if (stopCv_.wait_until(lk, due, [this] { return stopRequested_.load(); })) break;
         } else if (stopRequested_) {
            break;
         }
         Render(frame, static_cast<uint64_t>(i));
         md.Clear();
         md.AddTag(MM::g_Keyword_Metadata_CameraLabel, label);
         if (stampElapsed_) md.AddTag(MM::g_Keyword_Elapsed_Time_ms, SecondsSince(t0) * 1000.0);
         md.AddTag("MagacqCamera-FrameNumber", i);
         status = GetCoreCallback()->InsertImage(this, frame.data(), w, h, bpp, md.Serialize());
         if (status != DEVICE_OK) break;
         if (MagacqSeqStage* seq = dynamic_cast<MagacqSeqStage*>(Stage())) seq->Trigger();
      }
      capturing_ = false;
      GetCoreCallback()->AcqFinished(this, status);
   }

   // The stage named by FocusStage, or null.
   MM::Stage* Stage() {
      std::string label;
      {
         std::lock_guard<std::mutex> g(stageLock_);
         label = stageLabel_;
      }
      return dynamic_cast<MM::Stage*>(GetCoreCallback()->GetDevice(this, label.c_str()));
   }

   double StageZUm() {
      MM::Stage* stage = Stage();
      double z = 0.0;
      if (stage != nullptr) stage->GetPositionUm(z);
      return z;
   }

   // Fill buf (current ROI, binning, pixel type) for frame `counter`.
   void Render(std::vector<unsigned char>& buf, uint64_t counter) {
      const size_t n = static_cast<size_t>(roiW_) * roiH_;
      const unsigned bpp = bytesPerPixel_;
      if (buf.size() != n * bpp) buf.assign(n * bpp, 0);
      if (beads_) {
         RenderBeads(buf, counter);
      } else if (bpp == 4) {
         // Float: (counter + pixel index) mod 2^16, plus a half (exact in float32).
         auto* p = reinterpret_cast<float*>(buf.data());
         for (size_t k = 0; k < n; ++k) p[k] = static_cast<float>((counter + k) % 65536) + 0.5f;
      } else if (bpp == 1) {
         auto* p = buf.data();
         const uint8_t c = static_cast<uint8_t>(counter);
         for (size_t k = 0; k < n; ++k) p[k] = static_cast<uint8_t>(c + k);
      } else {
         auto* p = reinterpret_cast<uint16_t*>(buf.data());
         const uint16_t c = static_cast<uint16_t>(counter);
         for (size_t k = 0; k < n; ++k) p[k] = static_cast<uint16_t>(c + k);
      }
      // The frame counter, little endian, in the first 8 bytes.
      for (int b = 0; b < 8 && static_cast<size_t>(b) < buf.size(); ++b)
         buf[b] = static_cast<unsigned char>(counter >> (8 * b));
   }

   void RenderBeads(std::vector<unsigned char>& buf, uint64_t counter) {
      const unsigned W = roiW_, H = roiH_, bin = binning_, bpp = bytesPerPixel_;
      const double maxv = (bpp == 1) ? 255.0 : 65535.0;
      const double bg = 0.35 * maxv;
      // Ring look from the defocus d (um): ring period and envelope grow, contrast falls.
      const double d = std::max(0.2, std::fabs(StageZUm() - beadFocusUm_.load()));
      const double period = 4.0 + 1.5 * d;    // sensor pixels
      const double envelope = 6.0 + 5.0 * d;  // sensor pixels
      const double amp = 0.3 * maxv / (1.0 + 0.15 * d);
      const double rMax = std::min(4.0 * envelope, 120.0);
      const double lutStep = 0.05;
      const size_t lutN = static_cast<size_t>(rMax / lutStep) + 2;
      std::vector<float> lut(lutN);
      for (size_t k = 0; k < lutN; ++k) {
         const double r = k * lutStep;
         lut[k] = static_cast<float>(-amp * std::exp(-r / envelope) *
                                     std::cos(2.0 * M_PI * r / period));
      }
      std::vector<float> img(static_cast<size_t>(W) * H, static_cast<float>(bg));
      const int nb = beadCount_.load();
      const int cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(nb))));
      const int rows = std::max(1, (nb + cols - 1) / cols);
      for (int b = 0; b < nb; ++b) {
         // Bead centre in sensor pixels, off the pixel grid by a bead-specific fraction.
         const double cx = sensorW_ * ((b % cols) + 0.5) / cols + 0.13 + 0.071 * b;
         const double cy = sensorH_ * ((b / cols) + 0.5) / rows + 0.37 - 0.053 * b;
         // Output pixel (px, py) covers sensor [(roiX+px)*bin, +bin); use its centre.
         const double ox = cx / bin - roiX_ - 0.5, oy = cy / bin - roiY_ - 0.5;
         const double rr = rMax / bin;
         const int x0 = std::max(0, static_cast<int>(std::floor(ox - rr)));
         const int x1 = std::min(static_cast<int>(W) - 1, static_cast<int>(std::ceil(ox + rr)));
         const int y0 = std::max(0, static_cast<int>(std::floor(oy - rr)));
         const int y1 = std::min(static_cast<int>(H) - 1, static_cast<int>(std::ceil(oy + rr)));
         for (int y = y0; y <= y1; ++y) {
            const double dy = (y - oy) * bin;
            for (int x = x0; x <= x1; ++x) {
               const double dx = (x - ox) * bin;
               const double r = std::sqrt(dx * dx + dy * dy);
               if (r >= rMax) continue;
               img[static_cast<size_t>(y) * W + x] += lut[static_cast<size_t>(r / lutStep)];
            }
         }
      }
      const int noise = noise_.load();
      uint64_t s = counter * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
      for (size_t k = 0; k < img.size(); ++k) {
         double v = img[k];
         if (noise > 0) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v += static_cast<double>(static_cast<int>(s % (2 * noise + 1)) - noise);
         }
         v = std::min(std::max(v, 0.0), maxv);
         if (bpp == 4)
            reinterpret_cast<float*>(buf.data())[k] = static_cast<float>(v);
         else if (bpp == 1)
            buf[k] = static_cast<uint8_t>(v + 0.5);
         else
            reinterpret_cast<uint16_t*>(buf.data())[k] = static_cast<uint16_t>(v + 0.5);
      }
   }

   bool initialized_ = false;
   unsigned sensorW_ = 512, sensorH_ = 512;
   unsigned roiX_ = 0, roiY_ = 0, roiW_ = 512, roiH_ = 512;
   unsigned binning_ = 1;
   unsigned bytesPerPixel_ = 2;
   std::atomic<double> exposureMs_{10.0};
   std::atomic<bool> beads_{false};
   std::atomic<bool> stampElapsed_{true};
   std::atomic<int> beadCount_{4};
   std::atomic<double> beadFocusUm_{-5.0};
   std::atomic<int> noise_{0};
   std::string stageLabel_ = "Z";
   std::mutex stageLock_;
   std::mutex settingsLock_;
   std::vector<unsigned char> snapBuf_;
   uint64_t snapCounter_ = 0;

   std::thread thread_;
   std::atomic<bool> capturing_{false};
   std::mutex stopLock_;
   std::condition_variable stopCv_;
   std::atomic<bool> stopRequested_{false};
};

// ------------------------------------------------------------------------------------------
// Module interface
// ------------------------------------------------------------------------------------------

MODULE_API void InitializeModuleData() {
   RegisterDevice(kCameraName, MM::CameraDevice, "magacq test camera (frame counter, beads)");
   RegisterDevice(kStageName, MM::StageDevice, "magacq test focus stage");
   RegisterDevice(kMagnetStageName, MM::StageDevice, "magacq test magnet motor (height, rotation)");
   RegisterDevice(kPlainStageName, MM::StageDevice, "magacq test stage without velocity");
   RegisterDevice(kSeqStageName, MM::StageDevice, "magacq test sequenceable focus stage");
   RegisterDevice(kXYStageName, MM::XYStageDevice, "magacq test XY stage");
}

MODULE_API MM::Device* CreateDevice(const char* name) {
   if (name == nullptr) return nullptr;
   if (std::strcmp(name, kCameraName) == 0) return new MagacqCamera();
   if (std::strcmp(name, kStageName) == 0) return new MagacqZStage();
   if (std::strcmp(name, kMagnetStageName) == 0) return new MagacqMagnetStage();
   if (std::strcmp(name, kPlainStageName) == 0) return new MagacqPlainStage();
   if (std::strcmp(name, kSeqStageName) == 0) return new MagacqSeqStage();
   if (std::strcmp(name, kXYStageName) == 0) return new MagacqXYStage();
   return nullptr;
}

MODULE_API void DeleteDevice(MM::Device* device) { delete device; }
